// The kernel/user-space ABI (bpf/tcflows.h) for C++, with its layout pinned.
#pragma once

#include <linux/types.h>

#include <cstddef>

extern "C" {
#include "proc.h"
#include "tcflows.h"
}

static_assert(sizeof(tcf_flow_key) == 48);
static_assert(offsetof(tcf_flow_key, port) == 32);
static_assert(offsetof(tcf_flow_key, ifindex) == 36);
static_assert(offsetof(tcf_flow_key, ethertype) == 44);
static_assert(offsetof(tcf_flow_key, kind) == 47);
static_assert(sizeof(tcf_tcp_dir) == 64);
static_assert(sizeof(tcf_conn) == 256); // 16 slots a page
static_assert(offsetof(tcf_conn, tcp) == 128);
static_assert(offsetof(tcf_read_frame, data) == 24);
static_assert(offsetof(tcf_conn, pkts) == 48);
static_assert(offsetof(tcf_conn, first_ns) == 80);
static_assert(offsetof(tcf_conn, order) == 96);
static_assert(offsetof(tcf_conn, state) == 104);
static_assert(offsetof(tcf_conn, marks) == 108);
static_assert(offsetof(tcf_conn, syn_seq) == 120);
static_assert(offsetof(tcf_conn, first) == 124);
static_assert(sizeof(tcf_pool) == 16);
static_assert(sizeof(tcf_doorbell) == 8);
static_assert(sizeof(tcf_config) == 56);
static_assert(sizeof(tcf_proc_key) == 40);
static_assert(offsetof(tcf_proc_key, local_port) == 32);
static_assert(offsetof(tcf_proc_key, ethertype) == 36);
static_assert(sizeof(tcf_proc_owner) == 40);
static_assert(offsetof(tcf_proc_owner, comm) == 24);
