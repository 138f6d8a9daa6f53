"""Third-party HTTP/2 peer (python-hyper `h2`) for the devserver: drives the native mapping and
RFC 8441 at the HTTP/2-frame level and checks DATA-frame boundaries.

Usage: h2_peer.py HOST:PORT   (TLS, ALPN h2, certificate not verified: a local test server)
Prints one line per check; exits non-zero on the first failure.
"""

import os
import socket
import ssl
import struct
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

TIMEOUT = 20


class Peer:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.authority = addr
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2", "ALPN h2"
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.conn.initiate_connection()
        self.flush()
        self.events = []
        self.remote_settings = {}

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self):
        data = self.sock.recv(65536)
        if not data:
            raise AssertionError("connection closed by the server")
        for ev in self.conn.receive_data(data):
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                for code, change in ev.changed_settings.items():
                    self.remote_settings[int(code)] = change.new_value
            if isinstance(ev, h2.events.DataReceived):
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            self.events.append(ev)
        self.flush()

    def wait(self, pred, what):
        while True:
            for i, ev in enumerate(self.events):
                if pred(ev):
                    return self.events.pop(i)
            self.pump()

    def send_bytes(self, sid, data, end_stream=False):
        """A byte stream (RFC 8441): split to the frame size and the flow-control window."""
        while data:
            window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if window == 0:
                self.pump()
                continue
            chunk, data = data[:window], data[window:]
            self.conn.send_data(sid, chunk)
            self.flush()
        if end_stream:
            self.conn.end_stream(sid)
            self.flush()

    def wait_settings(self):
        self.wait(lambda e: isinstance(e, h2.events.RemoteSettingsChanged), "settings")

    def response(self, sid):
        ev = self.wait(
            lambda e: isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid, "response"
        )
        return dict(ev.headers)

    def data(self, sid):
        """The next DATA frame (one DataReceived per DATA frame) or None at END_STREAM."""
        ev = self.wait(
            lambda e: (isinstance(e, h2.events.DataReceived) and e.stream_id == sid)
            or (isinstance(e, h2.events.StreamEnded) and e.stream_id == sid)
            or (isinstance(e, h2.events.StreamReset) and e.stream_id == sid),
            "data",
        )
        if isinstance(ev, h2.events.DataReceived):
            if ev.data == b"":
                # The only empty DATA frame allowed is the one carrying END_STREAM.
                assert ev.stream_ended is not None, "zero-length DATA frame without END_STREAM"
                return self.data(sid)
            return ev.data
        if isinstance(ev, h2.events.StreamReset):
            raise AssertionError("stream reset: %r" % ev.error_code)
        return None


def end_our_side(p, sid):
    """Ends our side; the server may already have reset it with NO_ERROR (RFC 9113 §8.1:
    a complete response lets it stop the request body), never with an error."""
    for ev in list(p.events):
        if isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
            assert ev.error_code == 0, "reset after a clean close must be NO_ERROR: %r" % ev.error_code
            return
    try:
        p.conn.end_stream(sid)
        p.flush()
    except h2.exceptions.StreamClosedError:
        pass


def native_frame(opcode, payload, fin=True):
    return bytes([(0x80 if fin else 0) | opcode]) + payload


def check_native(p):
    sid = p.conn.get_next_available_stream_id()
    p.conn.send_headers(
        sid,
        [(":method", "GET"), (":scheme", "wss"), (":authority", p.authority), (":path", "/ws/echo")],
    )
    p.flush()
    h = p.response(sid)
    assert h[":status"] == "200", h
    assert "sec-websocket-accept" not in h, h
    # One WebSocket frame per DATA frame, each way.
    for msg in [b"hello", b"", "ünïcode".encode()]:
        p.conn.send_data(sid, native_frame(0x1, msg))
        p.flush()
        frame = p.data(sid)
        assert frame == native_frame(0x1, msg), (frame, msg)
    # A fragmented message from us, sent as three DATA frames.
    p.conn.send_data(sid, native_frame(0x2, b"ab", fin=False))
    p.conn.send_data(sid, native_frame(0x0, b"cd", fin=False))
    p.conn.send_data(sid, native_frame(0x0, b"ef", fin=True))
    p.flush()
    assert p.data(sid) == native_frame(0x2, b"abcdef")
    print("OK native: one frame per DATA frame, fragments reassembled")
    # A 100 KB message comes back fragmented into DATA frames within the max frame size.
    big = os.urandom(100_000)
    max_frame = p.conn.max_outbound_frame_size
    pos = 0
    first = True
    while pos < len(big):
        chunk = big[pos : pos + max_frame - 1]
        pos += len(chunk)
        opcode = 0x2 if first else 0x0
        first = False
        while p.conn.local_flow_control_window(sid) < len(chunk) + 1:
            p.pump()
        p.conn.send_data(sid, native_frame(opcode, chunk, fin=pos >= len(big)))
        p.flush()
    got = b""
    frames = 0
    max_inbound = p.conn.max_inbound_frame_size
    while True:
        frame = p.data(sid)
        assert frame, "a non-empty DATA frame"
        assert len(frame) <= max_inbound, len(frame)
        frames += 1
        op = frame[0] & 0x0F
        assert op == (0x2 if frames == 1 else 0x0), (frames, frame[0])
        assert frame[0] & 0x70 == 0, "no RSV bits"
        got += frame[1:]
        if frame[0] & 0x80:
            break
    assert got == big, "100 KB echoed"
    assert frames >= 7, frames
    print("OK native: 100000 bytes echoed in %d DATA frames <= %d bytes" % (frames, max_inbound))
    # Ping is answered with a Pong frame.
    p.conn.send_data(sid, native_frame(0x9, b"hb"))
    p.flush()
    assert p.data(sid) == native_frame(0xA, b"hb")
    # Close 4000: echoed, then END_STREAM as an empty DATA frame.
    p.conn.send_data(sid, native_frame(0x8, struct.pack("!H", 4000) + b"bye"))
    p.flush()
    frame = p.data(sid)
    assert frame[:3] == native_frame(0x8, struct.pack("!H", 4000)), frame
    assert p.data(sid) is None, "END_STREAM after the Close"
    end_our_side(p, sid)
    print("OK native: ping/pong, close code echoed, END_STREAM after Close")

    # A protocol error: reserved opcode -> Close 1002, then RST_STREAM(PROTOCOL_ERROR).
    sid = p.conn.get_next_available_stream_id()
    p.conn.send_headers(
        sid,
        [(":method", "GET"), (":scheme", "wss"), (":authority", p.authority), (":path", "/ws/echo")],
    )
    p.flush()
    assert p.response(sid)[":status"] == "200"
    p.conn.send_data(sid, bytes([0x83]))
    p.flush()
    frame = p.data(sid)
    assert frame[:3] == native_frame(0x8, struct.pack("!H", 1002)), frame
    ev = p.wait(
        lambda e: isinstance(e, (h2.events.StreamReset, h2.events.StreamEnded)) and e.stream_id == sid,
        "reset",
    )
    assert isinstance(ev, h2.events.StreamReset), ev
    assert ev.error_code == 1, ev.error_code  # PROTOCOL_ERROR
    print("OK native: reserved opcode -> Close 1002 + RST_STREAM(PROTOCOL_ERROR)")

    # Forbidden header -> 400 with a reason.
    sid = p.conn.get_next_available_stream_id()
    p.conn.send_headers(
        sid,
        [
            (":method", "GET"),
            (":scheme", "wss"),
            (":authority", p.authority),
            (":path", "/ws/echo"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        end_stream=True,
    )
    p.flush()
    assert p.response(sid)[":status"] == "400"
    print("OK native: forbidden header -> 400")


def mask(payload, key):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def rfc6455_client_frame(opcode, payload, fin=True):
    key = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + key + mask(payload, key)


def read_rfc6455(p, sid, buf):
    """Parses one unmasked server frame from the stream, reading DATA frames as needed."""
    while True:
        if len(buf) >= 2:
            n = buf[1] & 0x7F
            assert buf[1] & 0x80 == 0, "server frames are unmasked"
            off = 2
            if n == 126 and len(buf) >= 4:
                n, off = struct.unpack("!H", buf[2:4])[0], 4
            elif n == 127 and len(buf) >= 10:
                n, off = struct.unpack("!Q", buf[2:10])[0], 10
            if n < 126 or off > 2:
                if len(buf) >= off + n:
                    frame = (buf[0], bytes(buf[off : off + n]))
                    del buf[: off + n]
                    return frame
        data = p.data(sid)
        if data is None:
            return None
        buf.extend(data)


def check_rfc8441(p):
    assert p.remote_settings.get(int(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)) == 1
    sid = p.conn.get_next_available_stream_id()
    # No sec-websocket-version: tolerated.
    p.conn.send_headers(
        sid,
        [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":path", "/ws/echo"),
            (":authority", p.authority),
        ],
    )
    p.flush()
    h = p.response(sid)
    assert h[":status"] == "200", h
    assert "content-length" not in h, h
    buf = bytearray()
    for msg in [b"hello 8441", b"x" * 70_000]:
        p.send_bytes(sid, rfc6455_client_frame(0x2, msg))
        frame = read_rfc6455(p, sid, buf)
        assert frame == (0x82, msg), (frame[0], len(frame[1]))
    # Close then END_STREAM right away, before the server's echo: still a clean close.
    p.send_bytes(sid, rfc6455_client_frame(0x8, struct.pack("!H", 1000)), end_stream=True)
    frame = read_rfc6455(p, sid, buf)
    assert frame[0] == 0x88 and frame[1][:2] == struct.pack("!H", 1000), frame
    assert read_rfc6455(p, sid, buf) is None, "END_STREAM after the Close"
    print("OK rfc8441: 200 without content-length, echo, Close+END_STREAM in any order")


def main():
    p = Peer(sys.argv[1])
    p.wait_settings()
    mcs = p.remote_settings.get(int(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS))
    assert mcs is not None and mcs >= 1000, mcs
    print("OK settings: ENABLE_CONNECT_PROTOCOL=%s MAX_CONCURRENT_STREAMS=%s"
          % (p.remote_settings.get(8), mcs))
    check_native(p)
    check_rfc8441(p)
    print("ALL OK")


if __name__ == "__main__":
    main()
