"""A local SMTP server for tests/notify.rs: aiosmtpd, the asyncio SMTP server
of the aio-libs project, receiving on 127.0.0.1:PORT.

Each message is parsed with Python's `email` package (RFC 5322 + MIME,
policy.default) and written to OUT as one JSON line with its envelope,
decoded headers and plain-text body. The first FAIL_FIRST messages are
refused with `451 4.3.0` (a temporary failure that a sender must retry).
Prints `ready` once the server answers; runs until stdin closes.

usage: smtp_receiver.py PORT OUT FAIL_FIRST
"""

import json
import sys

from email import message_from_bytes, policy

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, out, fail_first):
        self.out = out
        self.fail = fail_first

    def write(self, record):
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

    async def handle_DATA(self, server, session, envelope):
        if self.fail > 0:
            self.fail -= 1
            self.write({"refused": True})
            return "451 4.3.0 Try again later"
        msg = message_from_bytes(envelope.content, policy=policy.default)
        body = msg.get_body(preferencelist=("plain",))
        self.write(
            {
                "refused": False,
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "from": str(msg["From"]),
                "to": str(msg["To"]),
                "subject": str(msg["Subject"]),
                "message_id": str(msg["Message-ID"]),
                "idempotency_key": str(msg["X-Hotspot-Idempotency-Key"]),
                "alert_id": str(msg["X-Hotspot-Alert-Id"]),
                "content_type": msg.get_content_type(),
                "charset": msg.get_content_charset(),
                "body": body.get_content() if body is not None else None,
                "defects": [type(d).__name__ for d in msg.defects],
            }
        )
        return "250 OK"


def main():
    port, out, fail_first = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    controller = Controller(Handler(out, fail_first), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
