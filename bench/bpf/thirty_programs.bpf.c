/* The isolation benchmark: 30 programs in one object, of which one the
 * verifier rejects (a NULL dereference), so the whole-object load fails and
 * the validator must find the culprit among the 30. Written for
 * bench/validator.sh only: it is not part of the test corpus. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("tracepoint/sched/sched_switch")
int ok_00(void *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_01(void *ctx)
{
	__u32 key = 1;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_02(void *ctx)
{
	__u32 key = 2;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_03(void *ctx)
{
	__u32 key = 3;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_04(void *ctx)
{
	__u32 key = 4;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_05(void *ctx)
{
	__u32 key = 5;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_06(void *ctx)
{
	__u32 key = 6;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_07(void *ctx)
{
	__u32 key = 7;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_08(void *ctx)
{
	__u32 key = 8;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_09(void *ctx)
{
	__u32 key = 9;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_10(void *ctx)
{
	__u32 key = 10;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_11(void *ctx)
{
	__u32 key = 11;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_12(void *ctx)
{
	__u32 key = 12;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_13(void *ctx)
{
	__u32 key = 13;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_14(void *ctx)
{
	__u32 key = 14;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_15(void *ctx)
{
	__u32 key = 15;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_16(void *ctx)
{
	__u32 key = 16;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_17(void *ctx)
{
	__u32 key = 17;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_18(void *ctx)
{
	__u32 key = 18;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_19(void *ctx)
{
	__u32 key = 19;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_20(void *ctx)
{
	__u32 key = 20;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_21(void *ctx)
{
	__u32 key = 21;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_22(void *ctx)
{
	__u32 key = 22;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_23(void *ctx)
{
	__u32 key = 23;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_24(void *ctx)
{
	__u32 key = 24;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_25(void *ctx)
{
	__u32 key = 25;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_26(void *ctx)
{
	__u32 key = 26;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_27(void *ctx)
{
	__u32 key = 27;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int ok_28(void *ctx)
{
	__u32 key = 28;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int rejected(void *ctx)
{
	__u32 key = 31;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	return *v & 1;
}

char LICENSE[] SEC("license") = "GPL";
