"""Mailbox containers shared by the notice and TLS-RPT readers (hand-written mboxes)."""

from __future__ import annotations

import gzip
import io
from datetime import datetime, timezone

from collectors.lab_ingest.mailsource import from_line_date, iter_mbox, iter_path, looks_like_email, looks_like_mbox


def test_mbox_split_unescape_and_envelope_dates():
    data = (b"stray text\n\n"
            b"From alice@example.org Mon Sep 30 12:00:00 2024\nSubject: one\n\n>From the body\n>>From deeper\n"
            b"From inside a paragraph is not a separator\n\n"
            b"From MAILER-DAEMON  Tue Oct  1 01:02:03 2024\nSubject: two\n\nbody\n")
    first, second, third = iter_mbox(io.BytesIO(data))
    assert first.position == "text before the first From_ line" and first.raw == b"stray text\n"
    assert second.raw == (b"Subject: one\n\nFrom the body\n>From deeper\n"
                          b"From inside a paragraph is not a separator\n")
    assert second.envelope_date == datetime(2024, 9, 30, 12, tzinfo=timezone.utc)
    assert second.position == "message 1 at line 3"
    assert third.raw == b"Subject: two\n\nbody\n" and not third.truncated
    assert third.envelope_date == datetime(2024, 10, 1, 1, 2, 3, tzinfo=timezone.utc)


def test_message_cap_and_zone_on_from_line():
    data = b"From a@b Mon Sep 30 12:00:00 +0200 2024\nSubject: big\n\n" + b"x" * 100 + b"\n"
    [message] = iter_mbox(io.BytesIO(data), max_bytes=50)
    assert message.truncated and len(message.raw) == 50
    assert from_line_date(b"From a@b Mon Sep 30 12:00:00 +0200 2024") == datetime(2024, 9, 30, 10, tzinfo=timezone.utc)
    assert from_line_date(b"From here on") is None


def test_gzip_mbox_and_sniffers(tmp_path):
    path = tmp_path / "box.mbox.gz"
    path.write_bytes(gzip.compress(b"From a@b Mon Sep 30 12:00:00 2024\nSubject: x\n\nbody\n"))
    [message] = iter_path(path)
    assert message.raw == b"Subject: x\n\nbody\n"
    assert looks_like_mbox(b"From a@b Mon Sep 30 12:00:00 2024\n")
    assert looks_like_email(b"From: a@b\nSubject: x\n\nbody")
    assert not looks_like_email(b"Sep 30 12:00:00 host postfix/smtpd[1]: connect\n")
