#!/usr/bin/env python3
"""Reads a pcap of one BGP session (sender -> receiver on TCP 179) and prints JSON:
established time (later of the first KEEPALIVEs each way), the time of the last UPDATE
carrying routes, and the count/bytes of UPDATEs the sender sent.

usage: analyze.py PCAP SENDER_IP"""
import json, struct, sys

def packets(path):
    d = open(path, 'rb').read()
    magic = struct.unpack('<I', d[:4])[0]
    nano = magic == 0xa1b23c4d
    linktype = struct.unpack('<I', d[20:24])[0]
    off = 24
    while off + 16 <= len(d):
        ts, frac, incl, _ = struct.unpack('<IIII', d[off:off + 16]); off += 16
        pkt = d[off:off + incl]; off += incl
        t = ts + frac / (1e9 if nano else 1e6)
        if linktype == 1:
            if struct.unpack('>H', pkt[12:14])[0] != 0x0800:
                continue
            p = pkt[14:]
        elif linktype == 113:  # Linux cooked
            p = pkt[16:]
        else:
            p = pkt
        if p[0] >> 4 != 4:
            continue
        ihl = (p[0] & 15) * 4
        tl = struct.unpack('>H', p[2:4])[0]
        src = '.'.join(map(str, p[12:16]))
        seg = p[ihl:tl]
        seq = struct.unpack('>I', seg[4:8])[0]
        doff = (seg[12] >> 4) * 4
        payload = seg[doff:]
        if payload:
            yield t, src, seq, payload

def messages(segs):
    """segs: list of (seq, payload, t) of one direction -> [(type, length, t_end, body)]"""
    segs.sort(key=lambda s: s[0])
    data = bytearray(); ends = []  # (end offset, t)
    base = segs[0][0] if segs else 0
    for seq, pl, t in segs:
        start = (seq - base) & 0xffffffff
        if start + len(pl) <= len(data):
            continue  # retransmission
        if start < len(data):
            pl = pl[len(data) - start:]
        data += pl
        ends.append((len(data), t))
    out = []; i = 0; j = 0
    while i + 19 <= len(data):
        ln = struct.unpack('>H', data[i + 16:i + 18])[0]
        if ln < 19 or i + ln > len(data):
            break
        while ends[j][0] < i + ln:
            j += 1
        out.append((data[i + 18], ln, ends[j][1], bytes(data[i + 19:i + ln])))
        i += ln
    return out

def main():
    path, sender = sys.argv[1], sys.argv[2]
    fwd, rev = [], []
    for t, src, seq, pl in packets(path):
        (fwd if src == sender else rev).append((seq, pl, t))
    mf, mr = messages(fwd), messages(rev)
    ka = lambda ms: next((t for ty, _, t, _ in ms if ty == 4), None)
    est = max(ka(mf), ka(mr))
    ups = [(ln, t, body) for ty, ln, t, body in mf if ty == 2]
    def carries_routes(body):
        wl = struct.unpack('>H', body[0:2])[0]
        al = struct.unpack('>H', body[2 + wl:4 + wl])[0]
        nlri = len(body) - 4 - wl - al
        return nlri > 0 or b'\x0e' in body[4 + wl:4 + wl + al] and al > 12
    last = max((t for _, t, b in ups if carries_routes(b)), default=est)
    print(json.dumps({
        'established': est,
        'last_update': last,
        'wire_ms': round((last - est) * 1e3, 1),
        'updates': len(ups),
        'update_bytes': sum(l for l, _, _ in ups),
    }))

main()
