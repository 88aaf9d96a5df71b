-- The connections the database holds as open (close_reason NULL), found
-- without a scan: a restarted agent takes their counters up from here, and
-- closes those that ended while no agent ran. A partial index: closed
-- connections, nearly all of them, are not in it.
CREATE INDEX connections_open ON connections(uid) WHERE close_reason IS NULL;
