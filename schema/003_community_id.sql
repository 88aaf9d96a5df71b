-- Each connection's Community ID v1 ("1:" and base64 of a SHA-1; see the
-- README), NULL for link-layer flows and for connections written before it
-- existed. Indexed: the lookup is one connection among many, from another
-- tool's log (Zeek, Suricata, Wireshark).
ALTER TABLE connections ADD COLUMN community_id TEXT;
CREATE INDEX connections_community_id ON connections(community_id)
  WHERE community_id IS NOT NULL;

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
       community_id
FROM connections;
