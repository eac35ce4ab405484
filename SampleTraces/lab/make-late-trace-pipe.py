#!/usr/bin/env python3
"""Real tracefs text -> what trace_pipe prints when some events are committed late.

trace_pipe prints the oldest event it can see on any CPU. An event reserved at time t but
committed d later is invisible until t + d, and so is everything after it on its CPU; the
other CPUs' newer lines are printed meanwhile. Here: every map on CPU 0 whose unmap comes on
another CPU within DELAY is committed DELAY late."""
import re, sys
src, dst, delay = sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.005
rx = re.compile(r'^\s*(.+?)\s+\[(\d+)\]\s+\S+\s+(\d+\.\d+): (\S+): (.*)$')
rows = []
for line in open(src):
    if line.startswith('#'):
        continue          # trace_pipe has no header
    m = rx.match(line)
    if not m:
        continue
    rows.append(dict(line=line, cpu=int(m.group(2)), ts=float(m.group(3)), ev=m.group(4), body=m.group(5)))
late = 0
for i, r in enumerate(rows):
    r['vis'] = r['ts']
    if r['cpu'] != 0 or not r['ev'].startswith('dma_map_'):
        continue
    addr = re.search(r'dma_addr=(\w+)', r['body'])
    for o in rows[i + 1:]:
        if o['ts'] > r['ts'] + delay:
            break
        if o['cpu'] != 0 and o['ev'].startswith('dma_unmap_') and addr and ('dma_addr=' + addr.group(1)) in o['body']:
            r['vis'] = r['ts'] + delay
            late += 1
            break
block = {}
for r in rows:
    block[r['cpu']] = max(block.get(r['cpu'], 0.0), r['vis'])
    r['key'] = block[r['cpu']]
rows.sort(key=lambda r: (r['key'], r['ts']))
open(dst, 'w').write(''.join(r['line'] for r in rows))
moved = sum(1 for a, b in zip(rows, rows[1:]) if b['ts'] < a['ts'])
print(f"{len(rows)} lines, {late} committed {delay*1000:.1f} ms late, {moved} places where time goes back")
