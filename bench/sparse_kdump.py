#!/usr/bin/python3
"""Make a SYNTHETIC sparse kdump-compressed dump for the growth figures of bench/run.

  sparse_kdump.py IN.kdump OUT.kdump ADDRESS_SPACE_BYTES

It re-wraps a real kdump-compressed dump (plain, header version >= 6) so that max_mapnr covers
ADDRESS_SPACE_BYTES: header and sub header get the new max_mapnr, both bitmaps grow to the new
size (the added pfns are holes: bits zero, left as holes in the file), page descriptors keep
their order with offsets shifted by the growth of the bitmaps, and the page data is copied
unchanged. The kernel inside is the real one, so every reader opens it as it opens IN; only
the address space the readers must account for grows. `vmcore-gdbserver convert` re-encodes
dumps but does not change max_mapnr, hence this tool.
"""

import os
import struct
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, dst, space = sys.argv[1], sys.argv[2], int(sys.argv[3], 0)
    with open(src, "rb") as f:
        header = bytearray(f.read(464))
        if header[:8] != b"KDUMP   ":
            sys.exit("%s: not a plain kdump-compressed dump (signature %r at offset 0)"
                     % (src, bytes(header[:8])))
        version, = struct.unpack_from("<i", header, 8)
        block_size, sub_hdr_size, bitmap_blocks = struct.unpack_from("<iiI", header, 428)
        if version < 6:
            sys.exit("%s: header version %d, need >= 6 (max_mapnr_64)" % (src, version))
        f.seek(block_size)
        sub_area = bytearray(f.read(block_size * sub_hdr_size))
        old_mapnr, = struct.unpack_from("<Q", sub_area, 96)
        new_mapnr = space // block_size
        if new_mapnr < old_mapnr:
            sys.exit("%s: already covers %d pages, more than %d" % (src, old_mapnr, new_mapnr))
        # makedumpfile's rule: each bitmap is a whole number of blocks.
        old_half = bitmap_blocks // 2
        new_half = -(-(-(-new_mapnr // 8)) // block_size)
        delta = (new_half - old_half) * 2 * block_size

        bitmap_off = block_size * (1 + sub_hdr_size)
        f.seek(bitmap_off)
        bitmap1 = f.read(old_half * block_size)
        bitmap2 = f.read(old_half * block_size)
        ndesc = sum(bin(b).count("1") for b in bitmap2)
        desc_off = bitmap_off + bitmap_blocks * block_size
        f.seek(desc_off)
        descs = bytearray(f.read(24 * ndesc))
        for i in range(ndesc):
            off, = struct.unpack_from("<q", descs, 24 * i)
            struct.pack_into("<q", descs, 24 * i, off + delta)
        data_start = desc_off + 24 * ndesc
        file_size = os.fstat(f.fileno()).st_size

        struct.pack_into("<I", header, 436, new_half * 2)
        struct.pack_into("<I", header, 440, min(new_mapnr, 0xFFFFFFFF))
        struct.pack_into("<Q", sub_area, 96, new_mapnr)
        off_erase, size_erase = struct.unpack_from("<qQ", sub_area, 64)
        if off_erase and size_erase:
            struct.pack_into("<q", sub_area, 64, off_erase + delta)

        new_bitmap_off = bitmap_off
        with open(dst, "wb") as out:
            out.write(header)
            out.seek(block_size)
            out.write(sub_area)
            out.seek(new_bitmap_off)
            out.write(bitmap1)
            out.seek(new_bitmap_off + new_half * block_size)
            out.write(bitmap2)
            out.seek(new_bitmap_off + 2 * new_half * block_size)
            out.write(descs)
            f.seek(data_start)
            while True:
                chunk = f.read(1 << 22)
                if not chunk:
                    break
                out.write(chunk)
            out.truncate(file_size + delta)
    print("%s: %d pages (%d GiB of address space), bitmaps %d -> %d blocks, %d pages present"
          % (dst, new_mapnr, new_mapnr * block_size >> 30, bitmap_blocks, new_half * 2, ndesc))


main()
