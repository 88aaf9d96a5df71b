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

-- The conn_log view shows them (in ms for round trips) from migration 5 on,
-- which recreates the view once for these and the process columns.
