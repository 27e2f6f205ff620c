import struct, sys
def msgs(path):
    d = open(path,'rb').read()
    off = 24
    streams = {}
    order = []
    while off < len(d):
        ts, tsu, incl, orig = struct.unpack('<IIII', d[off:off+16]); off += 16
        pkt = d[off:off+incl]; off += incl
        # ethernet
        et = struct.unpack('>H', pkt[12:14])[0]
        p = pkt[14:]
        if et == 0x0800:
            ihl = (p[0]&15)*4; src = '.'.join(map(str,p[12:16])); dst='.'.join(map(str,p[16:20])); proto=p[9]; tl = struct.unpack('>H',p[2:4])[0]; p = p[ihl:tl]
        else: continue
        sp, dp, seq = struct.unpack('>HHI', p[:8]); doff = (p[12]>>4)*4
        payload = p[doff:]
        key = (src, sp, dst, dp)
        if payload:
            s = streams.setdefault(key, {})
            s[seq] = payload
            if key not in order: order.append(key)
    out = []
    for key in order:
        data = b''.join(v for k,v in sorted(streams[key].items()))
        i = 0
        while i + 19 <= len(data):
            l = struct.unpack('>H', data[i+16:i+18])[0]
            out.append((key, data[i+18], data[i:i+l])); i += l
    return out
for path in sys.argv[1:]:
    for key, t, m in msgs(path):
        print(path, '%s:%d->%s:%d' % key, 'type', t, 'len', len(m))
        print('   ', m.hex())
