"""A real SMTP server for the tests (Debian's python3-aiosmtpd): every message it accepts is
written to DIR as <n>.eml. Stop it (kill) to make the product see SMTP refusing connections.
While DIR/.accept holds a number, it accepts that many more messages and then answers each
one "451 try again later" (a mail server refusing for now, halfway through a batch). While
DIR/.reject exists, every message is refused for good ("554"); addresses listed in DIR/.refuse
(one a line) are refused for good at RCPT ("550 no such mailbox")."""
import argparse
import asyncio
import itertools
import os
import signal

from aiosmtpd.controller import Controller


class ToDirectory:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count()

    def _budget_spent(self):
        """Takes one from DIR/.accept, if it is there; True when nothing was left to take."""
        path = os.path.join(self.directory, ".accept")
        try:
            with open(path) as f:
                left = int(f.read().strip() or "0")
        except FileNotFoundError:
            return False
        if left <= 0:
            return True
        with open(path, "w") as f:
            f.write(str(left - 1))
        return False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        try:
            with open(os.path.join(self.directory, ".refuse")) as f:
                refused = {line.strip() for line in f if line.strip()}
        except FileNotFoundError:
            refused = set()
        if address in refused:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if os.path.exists(os.path.join(self.directory, ".reject")):
            return "554 5.7.1 Rejected"
        if self._budget_spent():
            return "451 4.3.0 Try again later"
        n = next(self.counter)
        tmp = os.path.join(self.directory, f".{os.getpid()}-{n}.tmp")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.directory, f"{os.getpid()}-{n:06d}.eml"))
        return "250 Message accepted for delivery"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    controller = Controller(ToDirectory(a.dir), hostname="127.0.0.1", port=a.port)
    controller.start()
    print("ready", flush=True)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
