-- Host and net filters (report host X, net N) without reading a whole time
-- window: each address under the hour of the connection's last packet. A
-- write touches only the current hours of these indexes, nearly appending;
-- a lookup seeks once per hour the window may end in (c.end_ns / 3600e9 IN
-- hours AND c.src_addr = ...). A plain index on an address would place
-- every new connection at a random page and cost writes several times over.
CREATE INDEX connections_src_hour ON connections(end_ns / 3600000000000, src_addr);
CREATE INDEX connections_dst_hour ON connections(end_ns / 3600000000000, dst_addr);
