// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-bug: BUG() in a function that holds a live struct virtqueue *, as
 * virtqueue_add did. The queue is the transmit queue of the guest's
 * virtio-net device (eth0, which the scenario used for DHCP, so the ring has
 * moved and uses indirect descriptors). The device may have a split ring
 * (virtio-bug-l5) or a packed one (virtio-packed-l5, QEMU's packed=on).
 *
 * struct vring_virtqueue is private to virtio_ring.c; the fields the truth
 * needs are read through a mirror of its 6.1 layout, checked at run time
 * against the exported accessors (virtqueue_get_vring() for where the ring
 * union starts; virtqueue_get_vring_size() and virtqueue_get_{desc,avail,
 * used}_addr() for the packed part).
 */
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/stddef.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <net/net_namespace.h>

#include "vmgs_truth.h"

/* struct vring_virtqueue_packed of Debian's 6.1 virtio_ring.c, up to its DMA addresses. */
struct vmgs_vring_packed {
	struct {
		unsigned int num;
		struct vring_packed_desc *desc;
		struct vring_packed_desc_event *driver;
		struct vring_packed_desc_event *device;
	} vring;
	bool avail_wrap_counter;
	u16 avail_used_flags;
	u16 next_avail_idx;
	u16 event_flags_shadow;
	void *desc_state;
	void *desc_extra;
	dma_addr_t ring_dma_addr;
	dma_addr_t driver_event_dma_addr;
	dma_addr_t device_event_dma_addr;
};

/* The head of struct vring_virtqueue in Debian's 6.1 virtio_ring.c, into the ring union. */
struct vmgs_vring_virtqueue {
	struct virtqueue vq;
	bool packed_ring;
	bool use_dma_api;
	bool weak_barriers;
	bool broken;
	bool indirect;
	bool event;
	bool premapped;
	unsigned int free_head;
	unsigned int num_added;
	/* packed: bit 15 (VRING_PACKED_EVENT_F_WRAP_CTR) is the used wrap counter */
	u16 last_used_idx;
	bool event_triggered;
	union {
		struct vring vring;	/* split.vring, first member of the split part */
		struct vmgs_vring_packed packed;
	};
};

static char *ifname = "eth0";
module_param(ifname, charp, 0444);
static char *vqname = "output.0";
module_param(vqname, charp, 0444);

static struct virtqueue *vmgs_virtio_vq;

static const char *vmgs_bool(bool b)
{
	return b ? "true" : "false";
}

/* The ring's fields as JSON members (no braces), split or packed. */
static void vmgs_ring_fields(const struct vmgs_vring_virtqueue *vvq, char *buf, size_t size)
{
	struct virtio_device *vdev = vvq->vq.vdev;
	const struct vring *vr = &vvq->vring;
	const struct vmgs_vring_packed *p = &vvq->packed;
	u16 last_used, flags;
	bool used_wrap, avail, used;
	int n;

	n = scnprintf(buf, size, "\"vring_num\": %u, \"num_free\": %u, \"free_head\": %u, \"num_added\": %u, \"last_used_idx\": %u, \"indirect\": %s, \"event\": %s, \"packed_ring\": %s",
		      virtqueue_get_vring_size((struct virtqueue *)&vvq->vq), vvq->vq.num_free,
		      vvq->free_head, vvq->num_added, vvq->last_used_idx,
		      vmgs_bool(vvq->indirect), vmgs_bool(vvq->event),
		      vmgs_bool(vvq->packed_ring));
	if (!vvq->packed_ring) {
		scnprintf(buf + n, size - n, ", \"avail_idx\": %u, \"used_idx\": %u, \"vring_desc\": \"0x%lx\", \"vring_avail\": \"0x%lx\", \"vring_used\": \"0x%lx\"",
			  virtio16_to_cpu(vdev, READ_ONCE(vr->avail->idx)),
			  virtio16_to_cpu(vdev, READ_ONCE(vr->used->idx)),
			  (unsigned long)vr->desc, (unsigned long)vr->avail,
			  (unsigned long)vr->used);
		return;
	}
	/* As is_used_desc_packed() sees the descriptor virtqueue_get_buf reads next. */
	last_used = vvq->last_used_idx & ~(1 << VRING_PACKED_EVENT_F_WRAP_CTR);
	used_wrap = vvq->last_used_idx >> VRING_PACKED_EVENT_F_WRAP_CTR;
	flags = le16_to_cpu(READ_ONCE(p->vring.desc[last_used].flags));
	avail = flags & (1 << VRING_PACKED_DESC_F_AVAIL);
	used = flags & (1 << VRING_PACKED_DESC_F_USED);
	scnprintf(buf + n, size - n, ", \"last_used\": %u, \"used_wrap_counter\": %u, \"next_avail_idx\": %u, \"avail_wrap_counter\": %u, \"avail_used_flags\": %u, \"event_flags_shadow\": %u, \"vring_desc\": \"0x%lx\", \"vring_driver\": \"0x%lx\", \"vring_device\": \"0x%lx\", \"driver_event_flags\": %u, \"driver_event_off_wrap\": %u, \"device_event_flags\": %u, \"device_event_off_wrap\": %u, \"last_used_desc_flags\": %u, \"used_pending\": %s",
		  last_used, used_wrap, p->next_avail_idx, p->avail_wrap_counter,
		  p->avail_used_flags, p->event_flags_shadow,
		  (unsigned long)p->vring.desc, (unsigned long)p->vring.driver,
		  (unsigned long)p->vring.device,
		  le16_to_cpu(READ_ONCE(p->vring.driver->flags)),
		  le16_to_cpu(READ_ONCE(p->vring.driver->off_wrap)),
		  le16_to_cpu(READ_ONCE(p->vring.device->flags)),
		  le16_to_cpu(READ_ONCE(p->vring.device->off_wrap)),
		  flags, vmgs_bool(avail == used && used == used_wrap));
}

/* Printed before the BUG, so kept off the stack of the crashing function. */
static char vmgs_ring_buf[768];

static noinline void vmgs_virtqueue_add(struct virtqueue *vq, unsigned int total_sg)
{
	struct virtio_device *vdev = vq->vdev;
	struct virtqueue *each;

	/* Every virtqueue of the device, as vvirtio lists them. */
	list_for_each_entry(each, &vdev->vqs, list) {
		vmgs_ring_fields((void *)each, vmgs_ring_buf, sizeof(vmgs_ring_buf));
		VMGS_TRUTH_ITEM("device_vqs", "\"vq\": \"0x%lx\", \"vq_name\": \"%s\", \"vq_index\": %u, %s",
				(unsigned long)each, each->name, each->index, vmgs_ring_buf);
	}
	vmgs_ring_fields((void *)vq, vmgs_ring_buf, sizeof(vmgs_ring_buf));
	VMGS_TRUTH("\"vq\": \"0x%lx\", \"vq_name\": \"%s\", \"vq_index\": %u, \"vdev\": \"0x%lx\", \"ifname\": \"%s\", \"total_sg\": %u, %s",
		   (unsigned long)vq, vq->name, vq->index, (unsigned long)vdev,
		   ifname, total_sg, vmgs_ring_buf);
	/* The check virtqueue_add made: more buffers than free descriptors. */
	BUG_ON(total_sg > vq->num_free);
}

/* Whether the mirror's view of vq agrees with virtio_ring's own accessors. */
static bool vmgs_mirror_matches(struct virtqueue *vq)
{
	const struct vmgs_vring_virtqueue *vvq = (void *)vq;
	const struct vmgs_vring_packed *p = &vvq->packed;

	if ((void *)virtqueue_get_vring(vq) != (void *)&vvq->vring)
		return false;
	if (!vvq->packed_ring)
		return vvq->vring.num == virtqueue_get_vring_size(vq);
	/* Without the DMA API (no IOMMU here) the ring's DMA addresses are physical. */
	return p->vring.num == virtqueue_get_vring_size(vq) &&
	       p->ring_dma_addr == virtqueue_get_desc_addr(vq) &&
	       p->driver_event_dma_addr == virtqueue_get_avail_addr(vq) &&
	       p->device_event_dma_addr == virtqueue_get_used_addr(vq) &&
	       (vvq->use_dma_api || (p->ring_dma_addr == virt_to_phys(p->vring.desc) &&
				    p->driver_event_dma_addr == virt_to_phys(p->vring.driver) &&
				    p->device_event_dma_addr == virt_to_phys(p->vring.device)));
}

static int __init vmgs_virtio_init(void)
{
	struct net_device *ndev = dev_get_by_name(&init_net, ifname);
	struct virtio_device *vdev;
	struct virtqueue *vq;

	if (!ndev || !ndev->dev.parent)
		return -ENODEV;
	vdev = dev_to_virtio(ndev->dev.parent);
	list_for_each_entry(vq, &vdev->vqs, list) {
		if (!strcmp(vq->name, vqname))
			vmgs_virtio_vq = vq;
	}
	dev_put(ndev);
	if (!vmgs_virtio_vq)
		return -ENOENT;
	list_for_each_entry(vq, &vdev->vqs, list) {
		if (!vmgs_mirror_matches(vq)) {
			pr_err("vmgs_virtio: vring_virtqueue of %s differs from the mirror\n", vq->name);
			return -EINVAL;
		}
	}
	vq = vmgs_virtio_vq;
	vmgs_virtqueue_add(vq, virtqueue_get_vring_size(vq) + 1);
	return -EINVAL;
}

module_init(vmgs_virtio_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vmcore-gdbserver samples: BUG() holding a live virtqueue");
