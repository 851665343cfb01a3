/* SPDX-License-Identifier: MIT */
/* A circular doubly linked list embedded in its elements, kernel style. */
#ifndef LP_LIST_H
#define LP_LIST_H

#include <stddef.h>

struct list_head {
	struct list_head *next, *prev;
};

#define LIST_HEAD_INIT(name)                                                                       \
	{                                                                                          \
		&(name), &(name)                                                                   \
	}

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(struct list_head *h)
{
	h->next = h;
	h->prev = h;
}

static inline int list_empty(const struct list_head *h)
{
	return h->next == h;
}

static inline void list_insert(struct list_head *n, struct list_head *prev, struct list_head *next)
{
	n->next = next;
	n->prev = prev;
	prev->next = n;
	next->prev = n;
}

/* Add @n at the front of @h. */
static inline void list_add(struct list_head *n, struct list_head *h)
{
	list_insert(n, h, h->next);
}

/* Add @n at the back of @h. */
static inline void list_add_tail(struct list_head *n, struct list_head *h)
{
	list_insert(n, h->prev, h);
}

static inline void list_del(struct list_head *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

#define list_entry(ptr, type, member) container_of(ptr, type, member)

#define list_first_entry_or_null(h, type, member)                                                  \
	(list_empty(h) ? NULL : list_entry((h)->next, type, member))

#define list_for_each_entry(pos, h, member)                                                        \
	for (pos = list_entry((h)->next, __typeof__(*pos), member); &pos->member != (h);           \
	     pos = list_entry(pos->member.next, __typeof__(*pos), member))

#define list_for_each_entry_reverse(pos, h, member)                                                \
	for (pos = list_entry((h)->prev, __typeof__(*pos), member); &pos->member != (h);           \
	     pos = list_entry(pos->member.prev, __typeof__(*pos), member))

#define list_for_each_entry_safe(pos, tmp, h, member)                                              \
	for (pos = list_entry((h)->next, __typeof__(*pos), member),                                \
	    tmp = list_entry(pos->member.next, __typeof__(*pos), member);                          \
	     &pos->member != (h);                                                                  \
	     pos = tmp, tmp = list_entry(tmp->member.next, __typeof__(*tmp), member))

#endif /* LP_LIST_H */
