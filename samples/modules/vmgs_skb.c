// SPDX-License-Identifier: GPL-2.0
/*
 * skb-slab-frag: an skb on a TCP receive queue whose page fragment points
 * into a kmalloc-512 object (slab memory used as a page frag, as iSCSI over
 * XFS did), 768 bytes long so that it runs past the object's end. When the
 * reader copies it to user space, hardened usercopy stops the kernel with
 * BUG() ("Kernel memory exposure attempt detected from SLUB object").
 *
 * User space (vmgs-helper skbpair) makes a loopback TCP pair and writes the
 * reader's fd number to /proc/vmgs_skb; the write handler, in that process,
 * queues the skb with sequence numbers the reader will accept.
 */
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/proc_fs.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "vmgs_slub.h"
#include "vmgs_truth.h"

#define VMGS_OBJECT_SIZE 512
#define VMGS_FRAG_SIZE 768

/* Globals so that a debugger finds them by name in the dump. */
static struct sk_buff *vmgs_skb;
static void *vmgs_skb_object;

static void *object_fitting_in_page(void)
{
	void *tried[16];
	void *found = NULL;
	int n;

	for (n = 0; n < ARRAY_SIZE(tried); n++) {
		tried[n] = kmalloc(VMGS_OBJECT_SIZE, GFP_KERNEL);
		if (tried[n] && offset_in_page(tried[n]) + VMGS_FRAG_SIZE <= PAGE_SIZE) {
			found = tried[n];
			break;
		}
	}
	while (--n >= 0)
		kfree(tried[n]);
	return found;
}

static ssize_t vmgs_skb_write(struct file *file, const char __user *ubuf,
			      size_t count, loff_t *ppos)
{
	struct kmem_cache *cache = kmalloc_caches[KMALLOC_NORMAL][kmalloc_index(VMGS_OBJECT_SIZE)];
	struct socket *sock;
	struct tcp_sock *tp;
	struct sk_buff *skb;
	struct page *page;
	struct sock *sk;
	void *obj;
	int fd, err;

	err = kstrtoint_from_user(ubuf, count, 10, &fd);
	if (err)
		return err;
	sock = sockfd_lookup(fd, &err);
	if (!sock)
		return err;
	sk = sock->sk;
	err = -EINVAL;
	if (sk->sk_protocol != IPPROTO_TCP || sk->sk_state != TCP_ESTABLISHED)
		goto out;
	err = -ENOMEM;
	obj = object_fitting_in_page();
	skb = alloc_skb(0, GFP_KERNEL);
	if (!obj || !skb)
		goto out;
	memset(obj, 'V', VMGS_OBJECT_SIZE);
	page = virt_to_page(obj);
	get_page(page);
	skb_add_rx_frag(skb, 0, page, offset_in_page(obj), VMGS_FRAG_SIZE, VMGS_FRAG_SIZE);
	vmgs_skb = skb;
	vmgs_skb_object = obj;

	lock_sock(sk);
	tp = tcp_sk(sk);
	TCP_SKB_CB(skb)->seq = tp->rcv_nxt;
	TCP_SKB_CB(skb)->end_seq = tp->rcv_nxt + skb->len;
	TCP_SKB_CB(skb)->tcp_flags = TCPHDR_ACK | TCPHDR_PSH;
	skb_set_owner_r(skb, sk);
	__skb_queue_tail(&sk->sk_receive_queue, skb);
	WRITE_ONCE(tp->rcv_nxt, TCP_SKB_CB(skb)->end_seq);
	VMGS_TRUTH("\"skb\": \"0x%lx\", \"sock\": \"0x%lx\", \"len\": %u, \"data_len\": %u, \"truesize\": %u, \"nr_frags\": %u, \"frag_page\": \"0x%lx\", \"frag_page_head\": \"0x%lx\", \"frag_offset\": %u, \"frag_size\": %u, \"slab_cache\": \"0x%lx\", \"slab_cache_name\": \"%s\", \"slab_object\": \"0x%lx\", \"slab_object_size\": %u, \"seq\": %u, \"end_seq\": %u, \"copied_seq\": %u",
		   (unsigned long)skb, (unsigned long)sk, skb->len, skb->data_len,
		   skb->truesize, skb_shinfo(skb)->nr_frags, (unsigned long)page,
		   (unsigned long)compound_head(page),
		   skb_frag_off(&skb_shinfo(skb)->frags[0]),
		   skb_frag_size(&skb_shinfo(skb)->frags[0]),
		   (unsigned long)cache, cache->name, (unsigned long)obj,
		   cache->object_size, TCP_SKB_CB(skb)->seq,
		   TCP_SKB_CB(skb)->end_seq, tp->copied_seq);
	release_sock(sk);
	sk->sk_data_ready(sk);
	err = count;
out:
	sockfd_put(sock);
	return err;
}

static const struct proc_ops vmgs_skb_ops = {
	.proc_write = vmgs_skb_write,
};

static struct proc_dir_entry *vmgs_skb_entry;

static int __init vmgs_skb_init(void)
{
	vmgs_skb_entry = proc_create("vmgs_skb", 0200, NULL, &vmgs_skb_ops);
	return vmgs_skb_entry ? 0 : -ENOMEM;
}

static void __exit vmgs_skb_exit(void)
{
	proc_remove(vmgs_skb_entry);
}

module_init(vmgs_skb_init);
module_exit(vmgs_skb_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vmcore-gdbserver samples: slab object as an skb page fragment");
