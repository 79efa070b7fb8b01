"""Study workload: walk a 16 MiB anonymous region one page at a time, in order or at random.

    python3 walk.py sequential|random [PAGES]

Huge pages are turned off for the region (MADV_NOHUGEPAGE), so each page faults on its own.
Prints the region (region=0x<start>-0x<end>) so that a plot can be zoomed into it (pfharness plot --range).
"""

import ctypes
import mmap
import random
import sys

PAGE = 4096


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else "sequential"
    pages = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
    region = mmap.mmap(-1, pages * PAGE)
    region.madvise(mmap.MADV_NOHUGEPAGE)
    order = list(range(pages))
    if mode == "random":
        random.Random(42).shuffle(order)
    elif mode != "sequential":
        print("usage: walk.py sequential|random [PAGES]", file=sys.stderr)
        return 2
    start = ctypes.addressof(ctypes.c_char.from_buffer(region))
    for page in order:
        region[page * PAGE] = 1
    print(f"region=0x{start:x}-0x{start + pages * PAGE:x}")
    print(f"{mode} walk over {pages} pages done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
