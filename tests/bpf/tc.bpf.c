/* Classic tc classifier (clsact qdisc + filter on lo). */
#include "common.h"

SEC("tc")
int tc_pass(struct __sk_buff *skb)
{
	return 0; /* TC_ACT_OK */
}

char LICENSE[] SEC("license") = "GPL";
