-- tcflows database, schema 1.
-- Times are Unix epoch nanoseconds UTC. Addresses are canonical text (dotted
-- IPv4, RFC 5952 IPv6, colon-separated MAC for link-layer flows).

-- One row per connection, kept current while it is open (close_reason NULL)
-- and final once it is closed. src_* is the originator.
CREATE TABLE connections (
  id           INTEGER PRIMARY KEY,
  uid          TEXT    NOT NULL UNIQUE, -- stable across checkpoints and agent restarts
  iface        TEXT    NOT NULL,
  proto        TEXT    NOT NULL,        -- TCP UDP ICMP ICMPv6 SCTP, IANA number, ARP ...
  src_addr     TEXT    NOT NULL,
  src_port     INTEGER NOT NULL,        -- ICMP: the originator's type
  dst_addr     TEXT    NOT NULL,
  dst_port     INTEGER NOT NULL,        -- ICMP: the code
  vlan         INTEGER NOT NULL DEFAULT 0,
  start_ns     INTEGER NOT NULL,
  end_ns       INTEGER NOT NULL,        -- last packet so far
  orig_pkts    INTEGER NOT NULL,
  orig_bytes   INTEGER NOT NULL,        -- IP-level bytes
  resp_pkts    INTEGER NOT NULL,
  resp_bytes   INTEGER NOT NULL,
  state        TEXT    NOT NULL,        -- Zeek conn_state
  history      TEXT    NOT NULL,        -- Zeek history letters
  close_reason TEXT,                    -- fin rst idle shutdown; NULL while open
  rtt_ns       INTEGER,                 -- SYN to the ACK completing the handshake
  orig_guessed INTEGER NOT NULL DEFAULT 0 -- 1: originator guessed from the ports
);
-- Time windows (report --by conn, also with --host or --port) and retention.
-- No index on addresses or ports: each costs more per write than the whole
-- row does, and a report reads one time window (see README, Schema).
CREATE INDEX connections_end_ns ON connections(end_ns);

-- The traffic of a connection in each interval [from_ns, to_ns) it carried
-- any. A report over a window counts the rows whose interval ends inside it.
-- Clustered by time: window scans and retention read one range.
-- conn_id is connections.id; no foreign key, retention deletes both by time.
CREATE TABLE traffic (
  conn_id    INTEGER NOT NULL,
  from_ns    INTEGER NOT NULL,
  to_ns      INTEGER NOT NULL,
  orig_pkts  INTEGER NOT NULL,
  orig_bytes INTEGER NOT NULL,
  resp_pkts  INTEGER NOT NULL,
  resp_bytes INTEGER NOT NULL,
  PRIMARY KEY (to_ns, conn_id)
) WITHOUT ROWID;

-- Counters at the end of each interval, cumulative as read: the TC program's
-- (malformed, flow_full, ringbuf_full, ...) and the store's own (store_*).
CREATE TABLE counters (
  ts_ns INTEGER NOT NULL,
  name  TEXT    NOT NULL,
  value INTEGER NOT NULL,
  PRIMARY KEY (ts_ns, name)
) WITHOUT ROWID;

-- Views for people: UTC times with milliseconds, durations in ms, totals.
CREATE VIEW conn_log AS
SELECT id, uid, iface, proto, src_addr, src_port, dst_addr, dst_port, vlan,
       strftime('%Y-%m-%dT%H:%M:%S', start_ns / 1000000000, 'unixepoch')
         || printf('.%03dZ', start_ns / 1000000 % 1000) AS start_utc,
       strftime('%Y-%m-%dT%H:%M:%S', end_ns / 1000000000, 'unixepoch')
         || printf('.%03dZ', end_ns / 1000000 % 1000) AS end_utc,
       (end_ns - start_ns) / 1000000 AS duration_ms,
       orig_pkts, orig_bytes, resp_pkts, resp_bytes,
       orig_pkts + resp_pkts AS total_pkts, orig_bytes + resp_bytes AS total_bytes,
       state, history, close_reason, rtt_ns / 1000000.0 AS rtt_ms, orig_guessed
FROM connections;

CREATE VIEW traffic_log AS
SELECT t.conn_id, c.uid, c.iface, c.proto, c.src_addr, c.src_port, c.dst_addr, c.dst_port,
       strftime('%Y-%m-%dT%H:%M:%S', t.from_ns / 1000000000, 'unixepoch')
         || printf('.%03dZ', t.from_ns / 1000000 % 1000) AS from_utc,
       strftime('%Y-%m-%dT%H:%M:%S', t.to_ns / 1000000000, 'unixepoch')
         || printf('.%03dZ', t.to_ns / 1000000 % 1000) AS to_utc,
       t.orig_pkts, t.orig_bytes, t.resp_pkts, t.resp_bytes,
       t.orig_pkts + t.resp_pkts AS total_pkts, t.orig_bytes + t.resp_bytes AS total_bytes
FROM traffic t JOIN connections c ON c.id = t.conn_id;

-- Everything each host sent and received, over all the database holds.
CREATE VIEW host_totals AS
SELECT host, count(*) AS connections, sum(sent_pkts) AS sent_pkts,
       sum(sent_bytes) AS sent_bytes, sum(recv_pkts) AS recv_pkts,
       sum(recv_bytes) AS recv_bytes,
       sum(sent_bytes + recv_bytes) AS total_bytes
FROM (SELECT src_addr AS host, orig_pkts AS sent_pkts, orig_bytes AS sent_bytes,
             resp_pkts AS recv_pkts, resp_bytes AS recv_bytes FROM connections
      UNION ALL
      SELECT dst_addr, resp_pkts, resp_bytes, orig_pkts, orig_bytes FROM connections)
GROUP BY host;

-- Counters per interval with the increase since the previous row of the
-- same name (a counter that went down was reset: the increase is its value).
CREATE VIEW counter_log AS
SELECT strftime('%Y-%m-%dT%H:%M:%S', ts_ns / 1000000000, 'unixepoch')
         || printf('.%03dZ', ts_ns / 1000000 % 1000) AS ts_utc,
       name, value,
       CASE WHEN value >= prev THEN value - prev ELSE value END AS increase
FROM (SELECT ts_ns, name, value,
             lag(value) OVER (PARTITION BY name ORDER BY ts_ns) AS prev
      FROM counters);
