#!/usr/bin/python3
"""Generated figures of the documentation: written by `make docs-figures`
only, never by a test.

The suites that measure something the documentation records (the fault
matrix, concurrency and leak audit TAP suites; `make bench`) write their
figures into a directory (SM_FIGURES_DIR), one file per section.  This tool
puts them into the pages, or shows how they differ from what is recorded:

  figures.py splice PAGE DIR    replace each section of PAGE between
                                <!-- BEGIN generated: NAME --> and
                                <!-- END generated: NAME --> by DIR/NAME.md;
                                a page without markers is replaced whole by
                                DIR/<its file name> (docs/benchmarks.md)
  figures.py compare PAGE FILE  print what FILE (a whole generated page)
                                changes in PAGE's tables, line by line

splice fails, and writes nothing, when a figure file names a section PAGE
does not have, or when DIR holds no figure for PAGE at all.
"""

import difflib
import os
import re
import sys

BEGIN = "<!-- BEGIN generated: %s -->"
END = "<!-- END generated: %s -->"
MARKER = re.compile(r"<!-- BEGIN generated: ([\w-]+) -->")


def splice(page, fdir):
    """Writes the figures of fdir into page; returns the sections written."""
    with open(page) as f:
        doc = f.read()
    names = MARKER.findall(doc)
    whole = os.path.join(fdir, os.path.basename(page))
    if not names:
        if not os.path.isfile(whole):
            raise SystemExit("figures: no figures for %s in %s"
                             % (page, fdir))
        with open(whole) as f:
            new = f.read()
        written = [os.path.basename(page)]
    else:
        new = doc
        written = []
        for fname in sorted(os.listdir(fdir)):
            name, ext = os.path.splitext(fname)
            if ext != ".md" or fname == os.path.basename(page):
                continue
            if name not in names:
                continue
            with open(os.path.join(fdir, fname)) as f:
                text = f.read().strip("\n")
            b, e = BEGIN % name, END % name
            pattern = re.compile(re.escape(b) + ".*?" + re.escape(e), re.S)
            new = pattern.sub(lambda _m: "%s\n%s\n%s" % (b, text, e), new,
                              count=1)
            written.append(name)
        if not written:
            raise SystemExit("figures: no figures for %s in %s (sections: %s)"
                             % (page, fdir, ", ".join(names)))
    tmp = page + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, page)
    return written


def table_lines(text):
    return [line for line in text.splitlines() if line.startswith("|")]


def compare(page, new_file):
    """Prints the table lines of new_file that differ from page's."""
    with open(page) as f:
        old = table_lines(f.read())
    with open(new_file) as f:
        new = table_lines(f.read())
    diff = list(difflib.unified_diff(old, new, "recorded (%s)" % page,
                                     "this run", n=0, lineterm=""))
    if diff:
        print("\n".join(diff))
    else:
        print("figures: the tables of this run are the ones %s records"
              % page)


def main(argv):
    if len(argv) == 3 and argv[0] == "splice":
        for name in splice(argv[1], argv[2]):
            print("figures: %s: %s written" % (argv[1], name))
    elif len(argv) == 3 and argv[0] == "compare":
        compare(argv[1], argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
