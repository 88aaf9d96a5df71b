-- The process that owns a connection's local socket (see the README): its
-- pid, command name and cgroup path. NULL for forwarded traffic, for
-- connections whose owner was not found, for records read from a capture,
-- and for connections written before this existed. `cgroup` is NULL also
-- when the owner is known but its cgroup's path was not found.
ALTER TABLE connections ADD COLUMN pid INTEGER;
ALTER TABLE connections ADD COLUMN comm TEXT;
ALTER TABLE connections ADD COLUMN cgroup TEXT;
CREATE INDEX connections_comm ON connections(comm) WHERE comm IS NOT NULL;

DROP VIEW conn_log;
CREATE VIEW conn_log AS
SELECT id, uid, iface, proto, src_addr, src_port, dst_addr, dst_port, vlan,
       strftime('%Y-%m-%dT%H:%M:%S', start_ns / 1000000000, 'unixepoch')
         || printf('.%03dZ', start_ns / 1000000 % 1000) AS start_utc,
       strftime('%Y-%m-%dT%H:%M:%S', end_ns / 1000000000, 'unixepoch')
         || printf('.%03dZ', end_ns / 1000000 % 1000) AS end_utc,
       (end_ns - start_ns) / 1000000 AS duration_ms,
       orig_pkts, orig_bytes, resp_pkts, resp_bytes,
       orig_pkts + resp_pkts AS total_pkts, orig_bytes + resp_bytes AS total_bytes,
       state, history, close_reason, rtt_ns / 1000000.0 AS rtt_ms, orig_guessed,
       community_id,
       orig_retx_pkts, orig_retx_bytes, orig_ooo_pkts, orig_zero_windows,
       orig_rtt_min_ns / 1000000.0 AS orig_rtt_min_ms,
       orig_rtt_mean_ns / 1000000.0 AS orig_rtt_mean_ms,
       orig_rtt_max_ns / 1000000.0 AS orig_rtt_max_ms,
       resp_retx_pkts, resp_retx_bytes, resp_ooo_pkts, resp_zero_windows,
       resp_rtt_min_ns / 1000000.0 AS resp_rtt_min_ms,
       resp_rtt_mean_ns / 1000000.0 AS resp_rtt_mean_ms,
       resp_rtt_max_ns / 1000000.0 AS resp_rtt_max_ms,
       pid, comm, cgroup
FROM connections;
