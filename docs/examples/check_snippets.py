#!/usr/bin/env python3
"""Every ```c block of docs/*.md appears, whitespace aside, in one of
docs/examples/*.c, which the build compiles: a guide's code cannot drift from
the API without failing this test or the build. Copy the blocks from between
the "// [name]" markers of the examples.

usage: check_snippets.py DOCS_DIR
"""
import glob
import os
import re
import sys

docs = sys.argv[1]
code = " ".join(open(f).read() for f in sorted(glob.glob(os.path.join(docs, "examples", "*.c"))))
code = re.sub(r"\s+", " ", code)
bad, total = [], 0
for guide in sorted(glob.glob(os.path.join(docs, "*.md"))):
    text = open(guide).read()
    for n, block in enumerate(re.findall(r"^```c\n(.*?)^```$", text, re.M | re.S), 1):
        total += 1
        flat = re.sub(r"\s+", " ", block).strip()
        if flat not in code:
            bad.append("%s: block %d (%r...)" % (os.path.basename(guide), n, flat[:70]))
if bad:
    print("C blocks of the guides that are not in docs/examples/*.c (so not compiled):")
    print("\n".join("  " + b for b in bad))
    sys.exit(1)
print("docs: %d C blocks, all in compiled examples" % total)
