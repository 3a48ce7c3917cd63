"""A name is looked up in an object directory as the object manager does it: by its
hash bucket, reading an entry's object only where the entry's HashValue is the name's,
so naming a driver costs a few small reads rather than the whole directory."""

from __future__ import annotations

import re

from kdcon.extensions.objects import name_hash

from .transcripts import batch

TRACKDEMO_STOP = ("bp trackdemo!TrackDemoTick", "g", "g")


def test_the_hash_is_the_bucket_the_kernel_filed_each_name_in():
    text, status = batch(*TRACKDEMO_STOP, "!object \\")
    assert status == 0
    rows = text.split("kd> !object \\\n", 1)[1].split("---- -------")[1].splitlines()[1:]
    bucket = None
    checked = 0
    for row in rows:
        found = re.match(r"^     (\d\d)?\s+[0-9a-f]{16} \w+\s+(\S+)$", row)
        if found is None:
            break
        bucket = int(found.group(1)) if found.group(1) else bucket
        assert name_hash(found.group(2)) % 37 == bucket, row
        checked += 1
    assert checked >= 3                 # the event, \Driver and \Device
    assert name_hash("driver") == name_hash("DRIVER")


def test_naming_a_driver_reads_one_bucket_not_the_directory():
    text, status = batch(*TRACKDEMO_STOP, "!drvobj \\Driver\\trackdemo", ".wirestats")
    assert status == 0
    assert "Driver object (" in text and " is for:\n \\Driver\\trackdemo\n" in text
    trips = int(re.search(r"Last command: !drvobj \\Driver\\trackdemo\n +(\d+) round trips",
                          text).group(1))
    # The root's bucket for the whole path (a miss), \Driver's bucket, trackdemo's entry,
    # the two directories' and the driver's headers, the type table and two types, the
    # driver object and its device list: 20 requests (reading every entry took 27).
    assert trips <= 20
