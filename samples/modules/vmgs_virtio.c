// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-bug: BUG() in a function that holds a live struct virtqueue *, as
 * virtqueue_add did. The queue is the transmit queue of the guest's
 * virtio-net device (eth0, which the scenario used for DHCP, so the ring has
 * moved and uses indirect descriptors).
 *
 * struct vring_virtqueue is private to virtio_ring.c; the fields the truth
 * needs (free_head, last_used_idx, indirect) are read through a mirror of
 * its 6.1 layout, checked at run time against virtqueue_get_vring().
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/stddef.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <net/net_namespace.h>

#include "vmgs_truth.h"

/* The head of struct vring_virtqueue in Debian's 6.1 virtio_ring.c, up to the split ring. */
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
	u16 last_used_idx;
	bool event_triggered;
	struct vring vring;	/* split.vring, first member of the union */
};

static char *ifname = "eth0";
module_param(ifname, charp, 0444);
static char *vqname = "output.0";
module_param(vqname, charp, 0444);

static struct virtqueue *vmgs_virtio_vq;

static noinline void vmgs_virtqueue_add(struct virtqueue *vq, unsigned int total_sg)
{
	const struct vmgs_vring_virtqueue *vvq = (void *)vq;
	const struct vring *vr = virtqueue_get_vring(vq);
	struct virtio_device *vdev = vq->vdev;

	VMGS_TRUTH("\"vq\": \"0x%lx\", \"vq_name\": \"%s\", \"vq_index\": %u, \"vdev\": \"0x%lx\", \"ifname\": \"%s\", \"vring_num\": %u, \"num_free\": %u, \"free_head\": %u, \"avail_idx\": %u, \"used_idx\": %u, \"last_used_idx\": %u, \"indirect\": %s, \"packed_ring\": %s, \"vring_desc\": \"0x%lx\", \"vring_avail\": \"0x%lx\", \"vring_used\": \"0x%lx\", \"total_sg\": %u",
		   (unsigned long)vq, vq->name, vq->index, (unsigned long)vdev,
		   ifname, vr->num, vq->num_free, vvq->free_head,
		   virtio16_to_cpu(vdev, READ_ONCE(vr->avail->idx)),
		   virtio16_to_cpu(vdev, READ_ONCE(vr->used->idx)),
		   vvq->last_used_idx, vvq->indirect ? "true" : "false",
		   vvq->packed_ring ? "true" : "false",
		   (unsigned long)vr->desc, (unsigned long)vr->avail,
		   (unsigned long)vr->used, total_sg);
	/* The check virtqueue_add made: more buffers than free descriptors. */
	BUG_ON(total_sg > vq->num_free);
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
	vq = vmgs_virtio_vq;
	if ((void *)virtqueue_get_vring(vq) !=
	    (void *)vq + offsetof(struct vmgs_vring_virtqueue, vring) ||
	    ((struct vmgs_vring_virtqueue *)vq)->packed_ring) {
		pr_err("vmgs_virtio: vring_virtqueue layout differs from the mirror\n");
		return -EINVAL;
	}
	vmgs_virtqueue_add(vq, virtqueue_get_vring_size(vq) + 1);
	return -EINVAL;
}

module_init(vmgs_virtio_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vmcore-gdbserver samples: BUG() holding a live virtqueue");
