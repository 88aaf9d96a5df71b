"""The lab of tcflows' tests and benchmark: network namespaces joined by a
veth pair, real traffic, tcflows recording one end, and references that
tcflows did not produce (a tcpdump capture of the same interface read by
tshark, conntrack with accounting, the sockets' own byte counts).

One module a job; each name below has its home there:

    proc       commands, long-running processes, cleanup, LabError/Failure
    netns      the namespaces (Lab), sockets inside them, a private tmpfs or bpffs
    capture    tcpdump
    tshark     reading a capture: frames, flows, connections (the reference)
    segments   a capture's super-packets counted as the wire packets they stand for
    conntrack  conntrack with accounting (a second reference)
    compare    tcflows' flows and records against the reference
    traffic    TCP, UDP, ping, background traffic, connload bursts
    frames     raw Ethernet frames written on an interface
    tcflows    the program under test: running it, its output, its filters,
               programs and lock files
    db         a tcflows database, read and locked
    runs       a whole run: lab, capture, tcflows, traffic
    records    connection records against the capture, conntrack, a scenario
    runner     main(): the test file runner

Importing does nothing but import: cleanups run when run_cleanups() is
called, or at exit and on signals once install_exit_hooks() (main() calls
it) has installed them.
"""

from .proc import (Failure, LabError, Process, check, install_exit_hooks, ns_argv, on_cleanup,
                   run, run_cleanups, scratch_dir, settle, stop_process, tail, wait_for)
from .netns import (ADDR4, ADDR6, Lab, PrivateMount, PrivateTmpfs, in_netns,
                    kill_namespace_processes, lab_names, mac_of, make_socket, prepare_namespace,
                    remove_namespace, wait_listening)
from .tshark import (TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Connection, Counts, Frame, Key,
                     capture_connections, capture_flows, capture_history, capture_rtt,
                     capture_totals, connection_totals, is_orig_frame, norm_addr, read_capture,
                     stream_tcp_connections)
from .segments import super_frames, syn_mss, wire, wire_connections
from .conntrack import Conntrack, CtEntry
from .capture import Capture, Tcpdump
from .compare import (SHOW, compare_flows, compare_records, counts_text, describe_key,
                      differences, pair, rec_counts, record_ports, tally)
from .traffic import (ShortConnections, SteadyTcp, TcpTransfer, Worker, available_cpus,
                      connload_burst, connload_path, family_of, ping, recv_all, recv_exact,
                      send_all, tcp_listener, tcp_pair, tcp_transfers, udp_exchange,
                      udp_flood)
from .frames import arp_request, frame, ipv4_udp, ipv6_udp, send_frames
from .tcflows import (BPFFS, CAP_NET_ADMIN, NOBODY, Agent, Tcflows, counters_line,
                      expect_error, iter_jsonl, latest_jsonl, leftovers, lock_file, paths_under,
                      program_exists, program_gone, reachable_copy, read_jsonl,
                      remove_leftovers, snapshot_flows, store_counters, tc_state, tcflows_cmd,
                      tcflows_filters, tcflows_programs)
from .db import Db, DbWriteLock, totals
from .runs import Observation, Recorded, new_lab, observe
from .records import (DEFAULT_TIMEOUTS, TOLERANCE_NS, Expect, Problems, evidence,
                      observe_records, verify)
from .runner import OPTIONS, SKIP, main, option_file, require_root
