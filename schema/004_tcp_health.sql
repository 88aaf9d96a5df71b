-- TCP health per side (orig_: the originator's segments, resp_: the
-- responder's), as seen where tcflows runs; NULL for other protocols and for
-- connections written before it existed. See the README, "TCP health".
--   retx_pkts, retx_bytes  retransmitted data segments, their IP-level bytes
--   ooo_pkts               data segments out of order
--   zero_windows           segments advertising a zero window
--   rtt_samples            round trips measured: the segment to its echo or ACK
--   rtt_min/mean/max_ns    of those; NULL when none
ALTER TABLE connections ADD COLUMN orig_retx_pkts INTEGER;
ALTER TABLE connections ADD COLUMN orig_retx_bytes INTEGER;
ALTER TABLE connections ADD COLUMN orig_ooo_pkts INTEGER;
ALTER TABLE connections ADD COLUMN orig_zero_windows INTEGER;
ALTER TABLE connections ADD COLUMN orig_rtt_samples INTEGER;
ALTER TABLE connections ADD COLUMN orig_rtt_min_ns INTEGER;
ALTER TABLE connections ADD COLUMN orig_rtt_mean_ns INTEGER;
ALTER TABLE connections ADD COLUMN orig_rtt_max_ns INTEGER;
ALTER TABLE connections ADD COLUMN resp_retx_pkts INTEGER;
ALTER TABLE connections ADD COLUMN resp_retx_bytes INTEGER;
ALTER TABLE connections ADD COLUMN resp_ooo_pkts INTEGER;
ALTER TABLE connections ADD COLUMN resp_zero_windows INTEGER;
ALTER TABLE connections ADD COLUMN resp_rtt_samples INTEGER;
ALTER TABLE connections ADD COLUMN resp_rtt_min_ns INTEGER;
ALTER TABLE connections ADD COLUMN resp_rtt_mean_ns INTEGER;
ALTER TABLE connections ADD COLUMN resp_rtt_max_ns INTEGER;

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
       resp_rtt_max_ns / 1000000.0 AS resp_rtt_max_ms
FROM connections;
