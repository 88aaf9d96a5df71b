// The kernel/user-space ABI (bpf/tcflows.h) for C++, with its layout pinned.
#pragma once

#include <linux/types.h>

#include <cstddef>

extern "C" {
#include "tcflows.h"
}

static_assert(sizeof(tcf_flow_key) == 48);
static_assert(offsetof(tcf_flow_key, port) == 32);
static_assert(offsetof(tcf_flow_key, ifindex) == 36);
static_assert(offsetof(tcf_flow_key, ethertype) == 44);
static_assert(offsetof(tcf_flow_key, kind) == 47);
static_assert(sizeof(tcf_flow_val) == 64);
static_assert(offsetof(tcf_flow_val, seen) == 48);
static_assert(offsetof(tcf_flow_val, first_dir) == 56);
static_assert(offsetof(tcf_flow_val, tcp_flags) == 60);
static_assert(sizeof(tcf_ended_key) == 56);
static_assert(sizeof(tcf_event) == 64);
static_assert(offsetof(tcf_event, ts_ns) == 48);
static_assert(sizeof(tcf_config) == 40);
