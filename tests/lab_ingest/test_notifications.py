"""Delay and failure notices.

Every notice here is HAND-WRITTEN (built with the ``email`` package): the RFC 3464
example's structure (its appendix "Simple DSN"), Postfix bounces and delay warnings
following bounce(5)'s default templates and the DSN Postfix attaches, and plain-text
notices worded like Gmail's, Outlook's and Proton's (see
../shared/reference/notification_observations_alexander_2024.csv). Real notices from
real Postfix senders come from the lab's end-to-end run.
"""

from __future__ import annotations

import io
import mailbox
from datetime import datetime, timezone
from email.message import Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

from hypothesis import given, settings, strategies as st

from collectors.lab_ingest.mailsource import RawMessage
from collectors.lab_ingest.notifications import (
    MAX_TEXT_CHARS, Notification, parse, parse_message, parse_path, sniff, sniff_path,
)
from collectors.lab_ingest.records import Quarantined

UUID_B = "0f8fad5b-d9cb-469f-a165-70867728950e"
UUID_D = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
RCPT_B = f"{UUID_B}@b.lab.example.org"
RCPT_D = f"{UUID_D}@d.lab.example.org"
SECRET = "SECRET-BODY-TEXT-NEVER-KEPT"


def original_message(to: str, message_id: str) -> Message:
    message = MIMEText(f"Hello lab.\n{SECRET}\n")
    message["From"] = "alice@sender.example"
    message["To"] = to
    message["Subject"] = "lab test"
    message["Message-ID"] = message_id
    message["Date"] = "Mon, 30 Sep 2024 12:00:00 +0000"
    return message


def status_part(per_message: dict[str, str], *recipients: dict[str, str]) -> Message:
    part = Message()
    part["Content-Type"] = "message/delivery-status"
    blocks = []
    for fields in (per_message, *recipients):
        block = Message()
        for name, value in fields.items():
            block[name] = value
        blocks.append(block)
    part.set_payload(blocks)
    return part


def report(headers: dict[str, str], human: str, status: Message, original: Message | None) -> bytes:
    message = MIMEMultipart("report", report_type="delivery-status")
    for name, value in headers.items():
        message[name] = value
    message.preamble = "This is a MIME-encapsulated message.\n"
    message.attach(MIMEText(human, "plain", "utf-8"))
    message.attach(status)
    if original is not None:
        message.attach(original)
    return message.as_bytes()


def rfc3464_simple_dsn() -> bytes:
    """The structure of RFC 3464's "Simple DSN" example (addresses are ours)."""
    human = ("The original message was received at Sat, 2 Jul 1994 17:10:28 -0400\nfrom root@localhost\n\n"
             "   ----- The following addresses had delivery problems -----\n"
             f"<{RCPT_B}>  (unrecoverable error)\n\n"
             "   ----- Transcript of session follows -----\n"
             f"<{RCPT_B}>... Deferred: Connection timed out with b.lab.example.org.\n"
             "Message could not be delivered for 5 days\nMessage will be deleted from queue\n")
    status = status_part(
        {"Reporting-MTA": "dns; cs.utk.edu"},
        {"Original-Recipient": f"rfc822;{RCPT_B}", "Final-Recipient": f"rfc822;{RCPT_B}",
         "Action": "failed", "Status": "4.0.0", "Diagnostic-Code": "smtp; 426 connection timed out",
         "Last-Attempt-Date": "Thu, 7 Jul 1994 17:15:49 -0400"},
    )
    return report({"Date": "Thu, 7 Jul 1994 17:16:05 -0400",
                   "From": "Mail Delivery Subsystem <MAILER-DAEMON@CS.UTK.EDU>",
                   "Message-Id": "<199407072116.RAA14128@CS.UTK.EDU>",
                   "Subject": "Returned mail: Cannot send message for 5 days",
                   "To": "<owner-info-mime@cs.utk.edu>"},
                  human, status, MIMEMessage(original_message(RCPT_B, "<orig-1@sender.example>")))


POSTFIX_FAILURE_TEXT = """\
This is the mail system at host mail.sender.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<{rcpt}>: TLS is required, but was not offered by host
    b.lab.example.org[127.0.0.12]
"""

POSTFIX_DELAY_TEXT = """\
This is the mail system at host mail.sender.example.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

Your message could not be delivered for 0.0 hour(s).
It will be retried until it is 0.0 day(s) old.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<{rcpt}>: Server certificate not trusted
"""


def postfix_bounce() -> bytes:
    status = status_part(
        {"Reporting-MTA": "dns; mail.sender.example", "X-Postfix-Queue-ID": "4XHk1234",
         "X-Postfix-Sender": "rfc822; alice@sender.example",
         "Arrival-Date": "Mon, 30 Sep 2024 12:00:00 +0000 (UTC)"},
        {"Final-Recipient": f"rfc822; {RCPT_B}", "Original-Recipient": f"rfc822;{RCPT_B}",
         "Action": "failed", "Status": "4.7.4", "Remote-MTA": "dns; b.lab.example.org",
         "Diagnostic-Code": "X-Postfix; TLS is required, but was not offered by host\n"
                            "    b.lab.example.org[127.0.0.12]"},
    )
    return report({"Date": "Mon, 30 Sep 2024 12:05:00 +0000 (UTC)",
                   "From": "MAILER-DAEMON@mail.sender.example (Mail Delivery System)",
                   "Subject": "Undelivered Mail Returned to Sender", "To": "alice@sender.example",
                   "Auto-Submitted": "auto-replied", "Message-Id": "<bounce-1@mail.sender.example>"},
                  POSTFIX_FAILURE_TEXT.format(rcpt=RCPT_B), status,
                  MIMEMessage(original_message(RCPT_B, "<orig-b@sender.example>")))


def postfix_delay() -> bytes:
    status = status_part(
        {"Reporting-MTA": "dns; mail.sender.example", "X-Postfix-Queue-ID": "4XHk9999",
         "Arrival-Date": "Mon, 30 Sep 2024 12:00:00 +0000 (UTC)"},
        {"Final-Recipient": f"rfc822; {RCPT_D}", "Action": "delayed", "Status": "4.7.5",
         "Remote-MTA": "dns; d.lab.example.org",
         "Diagnostic-Code": "X-Postfix; Server certificate not trusted",
         "Will-Retry-Until": "Mon, 30 Sep 2024 12:10:00 +0000 (UTC)"},
    )
    headers = original_message(RCPT_D, "<orig-d@sender.example>")
    header_text = "".join(f"{k}: {v}\n" for k, v in headers.items())
    return report({"Date": "Mon, 30 Sep 2024 12:01:00 +0000 (UTC)",
                   "From": "MAILER-DAEMON@mail.sender.example (Mail Delivery System)",
                   "Subject": "Delayed Mail (still being retried)", "To": "alice@sender.example"},
                  POSTFIX_DELAY_TEXT.format(rcpt=RCPT_D), status, MIMEText(header_text, "rfc822-headers"))


def plain(subject: str, sender: str, text: str, date: str | None = "Tue, 1 Oct 2024 08:00:00 +0200",
          **headers: str) -> bytes:
    message = MIMEText(text, "plain", "utf-8")
    message["From"] = sender
    message["To"] = "alice@gmail.com"
    message["Subject"] = subject
    if date:
        message["Date"] = date
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    return message.as_bytes()


def gmail_delay() -> bytes:
    return plain("Delivery Status Notification (Delay)", "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
                 f"Delivery incomplete\n\nThere was a temporary problem delivering your message to {RCPT_B}. "
                 "Gmail will retry for 46 more hours. You'll be notified if the delivery fails permanently.\n\n"
                 "The response was:\n\nSTARTTLS not supported and STS policy requires enforcement\n",
                 References="<CAgmail-1@mail.gmail.com>", In_Reply_To="<CAgmail-1@mail.gmail.com>")


def gmail_blocked() -> bytes:
    return plain("Delivery Status Notification (Failure)", "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
                 f"Message blocked\n\nYour message to {RCPT_B} has been blocked. See technical details below "
                 "for more information.\n\nThe response was:\n\nSTARTTLS not supported and STS policy requires "
                 "enforcement\n", References="<CAgmail-1@mail.gmail.com>")


def outlook_failed() -> bytes:
    return plain("Undeliverable: lab test", "postmaster@outlook.com",
                 "Delivery has failed to these recipients or groups:\n\n"
                 f"{RCPT_D} ({RCPT_D})\nA communication failure occurred during the delivery of this message. "
                 "Please try to resend the message later.\n\nDiagnostic information for administrators:\n\n"
                 f"Generating server: DM6PR.namprd.prod.outlook.com\n{RCPT_D}\n"
                 "Remote server returned '550 5.4.300 Message expired -> 451 4.4.0 connection could not be made'\n\n"
                 "Original message headers:\n\n"
                 "From: Alice <alice@outlook.com>\nTo: " + RCPT_D + "\n"
                 "Message-ID: <DM6PR-orig@outlook.com>\nSubject: lab test\n\n"
                 f"{SECRET}\n")


def proton_delay_plain() -> bytes:
    """Postfix's delay-warning text sent as a plain (non-MIME-report) message."""
    return plain("Delayed Mail (still being retried)", "MAILER-DAEMON (Mail Delivery System)",
                 POSTFIX_DELAY_TEXT.format(rcpt=RCPT_D), date=None)


def item(raw: bytes, position: str = "test", envelope: datetime | None = None) -> RawMessage:
    return RawMessage(position, raw, envelope, False)


def test_rfc3464_simple_dsn_structure():
    notice = parse_message(item(rfc3464_simple_dsn()))
    assert isinstance(notice, Notification)
    assert notice.structure == "dsn"
    assert notice.kind == "failure"  # Action: failed wins over the 4.0.0 status
    assert notice.recipients == (RCPT_B,)
    assert notice.status_codes == ("4.0.0",)
    assert notice.diagnostics == ("smtp; 426 connection timed out",)
    assert notice.reporting_mta == "dns; cs.utk.edu"
    assert notice.original_message_ids == ("orig-1@sender.example",)
    assert notice.notice_message_id == "199407072116.RAA14128@CS.UTK.EDU"
    assert notice.notice_from == "mailer-daemon@cs.utk.edu"
    assert notice.received_at == datetime(1994, 7, 7, 21, 16, 5, tzinfo=timezone.utc)
    assert notice.received_at_source == "date"
    [recipient] = notice.dsn_recipients
    assert recipient.action == "failed" and recipient.original_recipient == RCPT_B
    assert recipient.last_attempt_date == "Thu, 7 Jul 1994 17:15:49 -0400"
    assert "Message could not be delivered for 5 days" in notice.text
    assert SECRET not in notice.text and SECRET not in repr(notice)
    assert not notice.mentions_tls and not notice.mentions_mta_sts


def test_postfix_bounce():
    notice = parse_message(item(postfix_bounce()))
    assert isinstance(notice, Notification)
    assert notice.kind == "failure" and notice.subject == "Undelivered Mail Returned to Sender"
    assert notice.recipients == (RCPT_B,)
    assert notice.status_codes == ("4.7.4",)
    assert notice.diagnostics[0].startswith("X-Postfix; TLS is required, but was not offered by host")
    assert notice.mentions_tls and not notice.mentions_mta_sts
    assert notice.original_message_ids == ("orig-b@sender.example",)
    assert notice.arrival_date == datetime(2024, 9, 30, 12, tzinfo=timezone.utc)
    assert notice.dsn_recipients[0].remote_mta == "dns; b.lab.example.org"
    assert notice.notice_from == "mailer-daemon@mail.sender.example"
    assert notice.notice_to == "alice@sender.example"
    assert "I'm sorry to have to inform you" in notice.text
    assert SECRET not in repr(notice)


def test_postfix_delay_warning_with_headers_only():
    notice = parse_message(item(postfix_delay()))
    assert isinstance(notice, Notification)
    assert notice.kind == "delay"
    assert notice.recipients == (RCPT_D,)
    assert notice.status_codes == ("4.7.5",)
    assert notice.original_message_ids == ("orig-d@sender.example",)
    assert notice.dsn_recipients[0].will_retry_until == "Mon, 30 Sep 2024 12:10:00 +0000 (UTC)"
    assert notice.mentions_tls  # "certificate"
    assert "THIS IS A WARNING ONLY" in notice.text


def test_gmail_style_plain_notices():
    delay = parse_message(item(gmail_delay()))
    blocked = parse_message(item(gmail_blocked()))
    assert isinstance(delay, Notification) and isinstance(blocked, Notification)
    assert (delay.kind, blocked.kind) == ("delay", "failure")
    for notice in (delay, blocked):
        assert notice.structure == "plain"
        assert notice.recipients == (RCPT_B,)
        assert notice.original_message_ids == ("CAgmail-1@mail.gmail.com",)
        assert notice.mentions_tls and notice.mentions_mta_sts
        assert notice.diagnostics == ("STARTTLS not supported and STS policy requires enforcement",)
    assert delay.received_at == datetime(2024, 10, 1, 6, tzinfo=timezone.utc)


def test_outlook_style_failure():
    notice = parse_message(item(outlook_failed()))
    assert isinstance(notice, Notification)
    assert notice.kind == "failure"
    assert notice.recipients == (RCPT_D,)
    assert notice.original_message_ids == ("DM6PR-orig@outlook.com",)
    assert "5.4.300" in notice.status_codes
    assert not notice.mentions_tls and not notice.mentions_mta_sts
    assert "Delivery has failed to these recipients or groups" in notice.text
    assert "Message-ID: <DM6PR-orig@outlook.com>" in notice.text  # quoted headers stay
    assert SECRET not in notice.text  # the quoted original's body does not


def test_proton_style_postfix_text_without_date_uses_envelope():
    envelope = datetime(2024, 10, 2, 1, 0, tzinfo=timezone.utc)
    notice = parse_message(item(proton_delay_plain(), envelope=envelope))
    assert isinstance(notice, Notification)
    assert notice.kind == "delay" and notice.recipients == (RCPT_D,)
    assert notice.received_at == envelope and notice.received_at_source == "envelope"
    assert notice.notice_from == "mailer-daemon"
    assert notice.diagnostics == ("Server certificate not trusted",)
    assert notice.mentions_tls


def test_success_notice():
    status = status_part({"Reporting-MTA": "dns; mail.sender.example"},
                         {"Final-Recipient": f"rfc822; {RCPT_B}", "Action": "relayed", "Status": "2.0.0"})
    raw = report({"From": "MAILER-DAEMON@mail.sender.example", "Subject": "Successful Mail Delivery Report"},
                 "This is the mail system. Your message was successfully delivered.", status, None)
    notice = parse_message(item(raw))
    assert isinstance(notice, Notification) and notice.kind == "success"


def test_text_is_capped():
    notice = parse_message(item(plain("Undelivered Mail Returned to Sender", "MAILER-DAEMON",
                                      "x" * (MAX_TEXT_CHARS * 2))))
    assert isinstance(notice, Notification) and len(notice.text) == MAX_TEXT_CHARS


def test_not_a_notice_and_garbage_are_quarantined():
    normal = plain("lunch?", "bob@example.com", "see you at noon")
    for raw, reason in ((normal, "not a delivery notice"), (b"\x00\xff\xfe garbage\n\x01", "no header fields"),
                        (b"", "empty message"), (b"   \n\n", "empty message")):
        result = parse_message(item(raw))
        assert isinstance(result, Quarantined), raw
        assert reason in result.reason and result.raw == raw


def all_notices() -> list[bytes]:
    return [rfc3464_simple_dsn(), postfix_bounce(), postfix_delay(), gmail_delay(), gmail_blocked(),
            outlook_failed(), proton_delay_plain()]


def test_mbox_with_several_messages(tmp_path: Path):
    path = tmp_path / "notices.mbox"
    box = mailbox.mbox(path)
    for raw in all_notices():
        box.add(mailbox.mboxMessage(raw))
    box.add(mailbox.mboxMessage(plain("lunch?", "bob@example.com", "From here on, see you\n")))
    box.flush()
    box.close()
    assert sniff_path(path)
    results = list(parse_path(path))
    kinds = [r.kind if isinstance(r, Notification) else "quarantined" for r in results]
    assert kinds == ["failure", "failure", "delay", "delay", "failure", "failure", "delay", "quarantined"]
    assert [r.position.split(" at ")[0] for r in results] == [f"message {n}" for n in range(1, 9)]
    with path.open("rb") as stream:
        assert [type(r) for r in parse(stream)] == [type(r) for r in results]


def test_maildir_cur_and_new(tmp_path: Path):
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    keys = [box.add(mailbox.MaildirMessage(raw)) for raw in all_notices()]
    seen = box.get_message(keys[0])
    seen.set_subdir("cur")
    box[keys[0]] = seen
    (tmp_path / "Maildir" / "tmp" / "in-flight").write_bytes(b"partial")
    box.close()
    assert sniff_path(tmp_path / "Maildir")
    results = list(parse_path(tmp_path / "Maildir"))
    assert len(results) == len(all_notices())
    assert all(isinstance(r, Notification) for r in results)
    assert results[0].position.startswith("cur/") and results[1].position.startswith("new/")
    assert {r.subject for r in results} >= {"Undelivered Mail Returned to Sender", "Delayed Mail (still being retried)"}


def test_single_eml_and_garbage_file(tmp_path: Path):
    eml = tmp_path / "bounce.eml"
    eml.write_bytes(postfix_bounce())
    assert sniff(eml.read_bytes()[:4096])
    [notice] = parse_path(eml)
    assert isinstance(notice, Notification) and notice.position == "bounce.eml"
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 40)
    assert not sniff(junk.read_bytes()[:4096])
    [bad] = parse_path(junk)
    assert isinstance(bad, Quarantined)


def test_truncated_gzip_mbox_is_quarantined_not_fatal(tmp_path: Path):
    import gzip

    data = b"".join(b"From MAILER-DAEMON Mon Sep 30 12:00:00 2024\n" + raw + b"\n" for raw in all_notices())
    packed = gzip.compress(data)
    path = tmp_path / "notices.mbox.gz"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    results = list(parse_path(path))
    assert isinstance(results[-1], Quarantined) and "truncated" in results[-1].reason
    assert any(isinstance(r, Notification) for r in results)


def test_sniff():
    assert sniff(postfix_bounce()[:4096]) and sniff(gmail_delay()[:4096])
    assert not sniff(b"provider,sent_at,from,to,message_id\n")
    assert not sniff(b'{"organization-name": "x"}')
    tlsrpt_mail = (b"From: noreply-smtp-tls-reporting@google.com\nTLS-Report-Domain: example.org\n"
                   b"Content-Type: multipart/report; report-type=tlsrpt; boundary=x\n\n")
    assert not sniff(tlsrpt_mail)


@settings(max_examples=200)
@given(st.binary(max_size=800))
def test_garbage_never_raises(data):
    assert isinstance(parse_message(item(data)), (Notification, Quarantined))
    for result in parse(io.BufferedReader(io.BytesIO(b"From x Mon Sep 30 12:00:00 2024\n" + data))):
        assert isinstance(result, (Notification, Quarantined))


@settings(max_examples=100)
@given(st.sampled_from(range(7)), st.integers(min_value=0, max_value=4000), st.binary(max_size=40))
def test_mangled_notices_never_raise(which, cut, noise):
    raw = all_notices()[which]
    mangled = raw[:cut] + noise + raw[cut + len(noise):]
    assert isinstance(parse_message(item(mangled)), (Notification, Quarantined))
