#!/usr/bin/env python3
"""stripe_fake: a small, stateful, in-memory stand-in for the Stripe API.

THIS IS NOT STRIPE. It is a test/development fake that speaks enough of the
Stripe HTTP API (form-encoded requests, Stripe-shaped JSON responses) for the
patient portal's integration tests and for `infra/run` on a machine without a
Stripe account. It never moves money and it only knows test cards.

It is written against `async-stripe` 1.0.0-rc.10, which decodes responses
strictly: every object returned here carries all the fields that the generated
Rust structs require.

Usage:
    python3 infra/stripe_fake.py --port 0 [--public-url http://127.0.0.1:PORT]
        [--webhook-url URL] [--webhook-secret whsec_...] [--api-key sk_test_...] [--verbose]

The first line on stdout is exactly `listening on <port>`. SIGTERM/SIGINT exit with code 0.

Stripe API subset (Bearer sk_test_ key; `Stripe-Account` scopes objects to a connected
account; `Idempotency-Key` on POSTs is honoured per account+key):
    POST /v1/accounts, GET /v1/accounts/{id}, POST /v1/account_links,
    POST /v1/customers, GET /v1/customers/{id}, GET /v1/customers/{id}/payment_methods,
    GET /v1/payment_methods/{id},
    POST /v1/checkout/sessions, GET /v1/checkout/sessions/{id}, POST .../{id}/expire,
    POST /v1/payment_intents, GET /v1/payment_intents[/{id}], GET /v1/charges/{id},
    POST /v1/refunds, GET /v1/refunds[/{id}], GET /v1/payouts[/{id}],
    GET /v1/balance_transactions[/{id}], GET /v1/disputes/{id}, POST /v1/disputes/{id}/close
Hosted pages (what a browser sees instead of Stripe's):
    GET/POST /checkout/{cs_id}          test-mode checkout (test cards only)
    GET/POST /connect/onboard/{link}    test-mode Connect onboarding
Fake-only control endpoints (JSON, no auth):
    GET|POST /_fake/clock {"now": ts} | {"advance": s}   fake clock for `created` and signatures
    POST /_fake/payouts {"account"}       pay out unpaid balance transactions (payout.paid)
    POST /_fake/disputes {"payment_intent", "reason"?}   charge.dispute.created
    POST /_fake/disputes/{id}/decide {"status": "won"|"lost"}   the bank decides (won: funds
                                          reinstated); charge.dispute.closed
    POST /_fake/onboard {"account"}       same as submitting the onboarding page
    POST /_fake/payment_methods {"payment_method", "card"}   make a saved card behave like another
    GET|POST|DELETE /_fake/faults         {"method","path"(trailing * = prefix),"mode":
                                          error_before|error_after|timeout_after,"count","seconds"}
    GET /_fake/requests, GET /_fake/objects?type=KIND[&account=acct_..], GET /_fake/events
    GET /_fake/webhooks, POST /_fake/webhooks/hold, POST /_fake/webhooks/release
                                          {"shuffle", "twice", "seed"}
    POST /_fake/webhooks/url {"url", "host"?}   where events go from now on (and a Host header)
    POST /_fake/reset                     forget everything (the clock stays)
Standard library only; everything lives in memory behind one lock.
"""
from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import html
import json
import random
import re
import secrets
import signal
import string
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_VERSION = "2026-09-30.endive"
DAY = 86_400
CHECKOUT_TTL = DAY
ACCOUNT_LINK_TTL = 300
DISPUTE_FEE = 1_500
MIN_CHARGE = 50  # Stripe's USD minimum, applied to every currency here
WEBHOOK_BACKOFF = (0.2, 0.5, 1.0, 2.0)  # seconds before retries 2..5

# Test cards: number -> (brand, decline_code or None, decline message).
TEST_CARDS = {
    "4242424242424242": ("visa", None, None),
    "5555555555554444": ("mastercard", None, None),
    "4000000000000002": ("visa", "generic_decline", "Your card was declined."),
    "4000000000009995": ("visa", "insufficient_funds", "Your card has insufficient funds."),
    "4000000000009987": ("visa", "lost_card", "Your card was declined."),
}
# Stripe's magic test PaymentMethod ids, usable with POST /v1/payment_intents.
MAGIC_PAYMENT_METHODS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
}
OBJECT_KINDS = (
    "account", "account_link", "customer", "payment_method", "checkout_session",
    "payment_intent", "charge", "refund", "balance_transaction", "payout", "dispute",
)
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


# --------------------------------------------------------------------------
# Small helpers: ids, clock, errors, form/query parsing
# --------------------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def fee_for(amount: int) -> int:
    """Stripe's standard US card fee: 2.9% + 30, rounded half up."""
    return (amount * 29 + 500) // 1000 + 30


def format_amount(amount: int, currency: str) -> str:
    symbol = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$"}.get(currency)
    value = f"{amount / 100:,.2f}"
    return f"{symbol}{value}" if symbol else f"{value} {currency.upper()}"


def snapshot(obj):
    return copy.deepcopy(obj)


class Clock:
    """Wall clock that can be moved: after set(t) it reads t plus real time elapsed."""

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> int:
        return int(time.time() + self._offset)

    def set(self, now: float) -> None:
        self._offset = float(now) - time.time()


class StripeError(Exception):
    """An error answered in Stripe's `{"error": {...}}` shape."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, **extra) -> None:
        super().__init__(message)
        self.status = status
        self.payload = {"type": type_, "message": message}
        if code:
            self.payload["code"] = code
            self.payload["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.payload["param"] = param
        self.payload.update(extra)

    def body(self) -> dict:
        return {"error": self.payload}


def not_found(kind: str, oid: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{oid}'", code="resource_missing", param=param)


_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse_params(encoded: str) -> dict:
    """Decode Stripe's bracket notation: a[b][0][c]=1 -> {"a": {"b": [{"c": "1"}]}}."""
    root: dict = {}
    for key, value in urllib.parse.parse_qsl(encoded, keep_blank_values=True):
        match = _KEY_RE.match(key)
        if match:
            parts = [match.group(1)] + re.findall(r"\[([^\[\]]*)\]", match.group(2))
            _assign(root, parts, value)
    return _listify(root)


def _assign(node: dict, parts: list[str], value: str) -> None:
    for i, part in enumerate(parts):
        if part == "":  # a[]=x appends
            part = str(len(node))
        if i == len(parts) - 1:
            node[part] = value
            return
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child


def _listify(value, key: str | None = None):
    """Turn dicts keyed 0..n into lists (but never metadata, whose keys are free-form)."""
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v, k) for k, v in value.items()}
    if key != "metadata" and items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


class Params:
    """Typed access to decoded request parameters, raising Stripe-style 400s."""

    def __init__(self, data: dict) -> None:
        self.data = data

    def raw(self, name: str):
        return self.data.get(name)

    def text(self, name: str, required: bool = False, choices=None) -> str | None:
        value = self.data.get(name)
        if value in (None, ""):
            if required:
                raise StripeError(400, f"Missing required param: {name}.", code="parameter_missing", param=name)
            return None
        if not isinstance(value, str):
            raise StripeError(400, f"Invalid string: {name}", code="parameter_invalid_string", param=name)
        if choices and value not in choices:
            raise StripeError(400, f"Invalid {name}: must be one of {', '.join(choices)}",
                              code="parameter_invalid_string", param=name)
        return value

    def integer(self, name: str, required: bool = False) -> int | None:
        return to_int(self.data.get(name), name, required)

    def flag(self, name: str) -> bool:
        return self.data.get(name) in ("true", "True", "1")

    def metadata(self, name: str = "metadata") -> dict:
        return string_map(self.data.get(name), name)

    def expand(self) -> list[str]:
        value = self.data.get("expand") or []
        return value if isinstance(value, list) else [value]


def to_int(value, name: str, required: bool = False) -> int | None:
    if value in (None, ""):
        if required:
            raise StripeError(400, f"Missing required param: {name}.", code="parameter_missing", param=name)
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=name)


def string_map(value, name: str) -> dict:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise StripeError(400, f"Invalid hash: {name}", code="parameter_invalid_empty", param=name)
    return {str(k): str(v) for k, v in value.items()}


def created_filter_matches(created: int, spec) -> bool:
    """`created=ts` or `created[gt|gte|lt|lte]=ts`."""
    if spec in (None, ""):
        return True
    if not isinstance(spec, dict):
        return created == to_int(spec, "created")
    checks = {"gt": created.__gt__, "gte": created.__ge__, "lt": created.__lt__, "lte": created.__le__}
    for op, bound in spec.items():
        if op not in checks:
            raise StripeError(400, f"Invalid created[{op}]", param=f"created[{op}]")
        if not checks[op](to_int(bound, f"created[{op}]")):
            return False
    return True


@dataclass
class ApiRequest:
    method: str
    path: str
    params: Params
    account: str | None
    idempotency_key: str | None
    request_id: str


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


def json_response(status: int, obj, headers: dict | None = None) -> Response:
    return Response(status, json.dumps(obj, indent=2).encode(), "application/json", headers or {})


# --------------------------------------------------------------------------
# Webhooks: signing and ordered background delivery with hold/release
# --------------------------------------------------------------------------

def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookDeliverer:
    """Delivers events in order from one background thread; can hold and release."""

    def __init__(self, url: str | None, secret: str, clock: Clock) -> None:
        self.url, self.secret, self.clock = url, secret, clock
        self.cond = threading.Condition()
        self.queue: deque = deque()
        self.held = False
        self.busy = False
        self.log: list[dict] = []
        self.host: str | None = None
        self.started = False
        if url:
            self._start()

    def _start(self) -> None:
        if not self.started:
            self.started = True
            threading.Thread(target=self._run, name="webhooks", daemon=True).start()

    def set_url(self, url: str, host: str | None = None) -> None:
        """Points deliveries somewhere (a test starts the fake before the server it calls),
        optionally with a Host header of its own (a server that routes by host name)."""
        with self.cond:
            self.url = url
            self.host = host
            self._start()
            self.cond.notify_all()

    def enqueue(self, event_id: str, event_type: str, body: bytes) -> None:
        if not self.url:
            return
        with self.cond:
            self.queue.append((event_id, event_type, body))
            self.cond.notify_all()

    def hold(self) -> None:
        with self.cond:
            self.held = True

    def release(self, shuffle: bool, twice: bool, seed) -> int:
        with self.cond:
            batch = list(self.queue)
            if twice:
                batch = batch + batch
            if shuffle:
                random.Random(seed).shuffle(batch)
            self.queue = deque(batch)
            self.held = False
            self.cond.notify_all()
            return len(batch)

    def status(self) -> dict:
        with self.cond:
            return {"url": self.url, "held": self.held, "queued": len(self.queue),
                    "in_flight": self.busy, "idle": not self.busy and not self.queue,
                    "deliveries": list(self.log)}

    def _run(self) -> None:
        while True:
            with self.cond:
                while self.held or not self.queue:
                    self.cond.wait()
                item = self.queue.popleft()
                self.busy = True
            try:
                self._deliver(*item)
            finally:
                with self.cond:
                    self.busy = False
                    self.cond.notify_all()

    def _deliver(self, event_id: str, event_type: str, body: bytes) -> None:
        for attempt in range(len(WEBHOOK_BACKOFF) + 1):
            if attempt:
                time.sleep(WEBHOOK_BACKOFF[attempt - 1])
            outcome = self._post_once(body)
            with self.cond:
                self.log.append({"event": event_id, "type": event_type, "attempt": attempt + 1, **outcome})
            if outcome.get("ok"):
                return

    def _post_once(self, body: bytes) -> dict:
        header = signature_header(self.secret, body, self.clock.now())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": header,
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks) stripe-fake",
        }
        if self.host:
            headers["Host"] = self.host
        request = urllib.request.Request(self.url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return {"status": reply.status, "ok": 200 <= reply.status < 300}
        except urllib.error.HTTPError as err:
            return {"status": err.code, "ok": False}
        except (OSError, ValueError) as err:
            return {"error": str(err), "ok": False}


# --------------------------------------------------------------------------
# Object builders (Stripe JSON shapes accepted by async-stripe rc.10)
# --------------------------------------------------------------------------

def card_details(number: str, now: int) -> dict:
    brand = TEST_CARDS[number][0]
    return {
        "brand": brand, "country": "US", "exp_month": 12, "exp_year": time.gmtime(now).tm_year + 3,
        "fingerprint": hashlib.sha256(number.encode()).hexdigest()[:16], "funding": "credit",
        "last4": number[-4:],
        "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
        "wallet": None,
    }


def build_payment_method(number: str, customer: str | None, email: str | None, now: int) -> dict:
    return {
        "id": new_id("pm_"), "object": "payment_method",
        "billing_details": {"address": None, "email": email, "name": None, "phone": None},
        "card": card_details(number, now), "created": now, "customer": customer,
        "livemode": False, "metadata": {}, "type": "card",
    }


def build_account(p: Params, now: int) -> dict:
    requested = p.raw("capabilities") or {}
    capabilities = {name: "inactive" for name in (requested if isinstance(requested, dict) else {})}
    country = p.text("country") or "US"
    return {
        "id": new_id("acct_", 16), "object": "account",
        "business_profile": {"name": None, "url": None, "mcc": None, "support_email": None,
                             "support_phone": None, "support_url": None, "product_description": None},
        "business_type": p.text("business_type"), "capabilities": capabilities,
        "charges_enabled": False, "country": country, "created": now,
        "default_currency": "usd" if country == "US" else None, "details_submitted": False,
        "email": p.text("email"), "metadata": p.metadata(), "payouts_enabled": False,
        "requirements": {
            "alternatives": [], "current_deadline": None,
            "currently_due": ["business_profile.url", "external_account", "individual.first_name",
                              "individual.last_name", "tos_acceptance.date", "tos_acceptance.ip"],
            "disabled_reason": "requirements.past_due", "errors": [],
            "eventually_due": ["business_profile.url", "external_account", "individual.first_name",
                               "individual.last_name", "tos_acceptance.date", "tos_acceptance.ip"],
            "past_due": ["external_account", "tos_acceptance.date", "tos_acceptance.ip"],
            "pending_verification": [],
        },
        "type": p.text("type") or "express",
    }


def build_customer(p: Params, now: int) -> dict:
    return {
        "id": new_id("cus_", 14), "object": "customer", "address": None, "balance": 0,
        "created": now, "currency": None, "default_source": None, "delinquent": False,
        "description": p.text("description"), "email": p.text("email"),
        "invoice_prefix": new_id("", 8).upper(),
        "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                             "footer": None, "rendering_options": None},
        "livemode": False, "metadata": p.metadata(), "name": p.text("name"),
        "next_invoice_sequence": 1, "phone": p.text("phone"), "preferred_locales": [],
        "shipping": None, "tax_exempt": "none", "test_clock": None,
    }


def build_checkout_session(p: Params, lines: list[dict], public_url: str, now: int) -> dict:
    sid = new_id("cs_test_a1", 56)
    total = sum(line["unit_amount"] * line["quantity"] for line in lines)
    customer = p.text("customer")
    return {
        "id": sid, "object": "checkout.session", "after_expiration": None,
        "allow_promotion_codes": None, "amount_subtotal": total, "amount_total": total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None, "cancel_url": p.text("cancel_url"),
        "client_reference_id": p.text("client_reference_id"), "client_secret": None,
        "consent": None, "consent_collection": None, "created": now, "currency": lines[0]["currency"],
        "custom_fields": [],
        "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                        "terms_of_service_acceptance": None},
        "customer": customer, "customer_creation": None if customer else "if_required",
        "customer_details": None, "customer_email": p.text("customer_email"),
        "expires_at": now + CHECKOUT_TTL, "invoice": None, "invoice_creation": None,
        "livemode": False, "locale": None, "metadata": p.metadata(), "mode": "payment",
        "payment_intent": None, "payment_link": None, "payment_method_collection": "if_required",
        "payment_method_types": ["card"], "payment_status": "unpaid",
        "phone_number_collection": {"enabled": False}, "recovered_from": None,
        "saved_payment_method_options": None, "setup_intent": None,
        "shipping_address_collection": None, "shipping_cost": None, "shipping_options": [],
        "status": "open", "submit_type": None, "subscription": None,
        "success_url": p.text("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page", "url": f"{public_url}/checkout/{sid}",
    }


def build_payment_intent(amount: int, currency: str, customer, metadata: dict, now: int, *,
                         description=None, setup_future_usage=None, receipt_email=None) -> dict:
    pid = new_id("pi_")
    return {
        "id": pid, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_received": 0, "application": None, "application_fee_amount": None,
        "automatic_payment_methods": None, "canceled_at": None, "cancellation_reason": None,
        "capture_method": "automatic_async", "client_secret": f"{pid}_secret_{new_id('', 24)}",
        "confirmation_method": "automatic", "created": now, "currency": currency,
        "customer": customer, "description": description, "last_payment_error": None,
        "latest_charge": None, "livemode": False, "metadata": metadata, "next_action": None,
        "on_behalf_of": None, "payment_method": None, "payment_method_types": ["card"],
        "processing": None, "receipt_email": receipt_email, "review": None,
        "setup_future_usage": setup_future_usage, "shipping": None, "source": None,
        "statement_descriptor": None, "statement_descriptor_suffix": None,
        "status": "requires_payment_method", "transfer_data": None, "transfer_group": None,
    }


def build_charge(pi: dict, pm: dict, now: int, decline: tuple | None) -> dict:
    code, message = decline if decline else (None, None)
    cid = new_id("ch_")
    return {
        "id": cid, "object": "charge", "amount": pi["amount"],
        "amount_captured": 0 if decline else pi["amount"], "amount_refunded": 0,
        "application_fee_amount": None, "balance_transaction": None,
        "billing_details": snapshot(pm["billing_details"]),
        "calculated_statement_descriptor": "PATIENT PORTAL", "captured": not decline,
        "created": now, "currency": pi["currency"], "customer": pi["customer"],
        "description": pi["description"], "disputed": False,
        "failure_code": "card_declined" if decline else None, "failure_message": message,
        "fraud_details": {}, "livemode": False, "metadata": dict(pi["metadata"]),
        "outcome": {
            "network_status": "declined_by_network" if decline else "approved_by_network",
            "reason": code, "risk_level": "normal", "risk_score": 20,
            "seller_message": "The bank did not return any further details with this decline."
            if decline else "Payment complete.",
            "type": "issuer_declined" if decline else "authorized",
        },
        "paid": not decline, "payment_intent": pi["id"], "payment_method": pm["id"],
        "payment_method_details": {"card": {**snapshot(pm["card"]), "network": pm["card"]["brand"]},
                                   "type": "card"},
        "receipt_email": None, "receipt_url": None, "refunded": False,
        "refunds": {"object": "list", "data": [], "has_more": False, "url": f"/v1/charges/{cid}/refunds"},
        "status": "failed" if decline else "succeeded",
    }


def build_balance_transaction(amount: int, fee: int, currency: str, source: str, type_: str,
                              category: str, description: str | None, now: int) -> dict:
    fee_details = [{"amount": fee, "application": None, "currency": currency,
                    "description": "Stripe processing fees" if type_ == "charge" else "Dispute fee",
                    "type": "stripe_fee"}] if fee else []
    return {
        "id": new_id("txn_"), "object": "balance_transaction", "amount": amount,
        "available_on": now, "balance_type": "payments", "created": now, "currency": currency,
        "description": description, "exchange_rate": None, "fee": fee, "fee_details": fee_details,
        "net": amount - fee, "reporting_category": category, "source": source,
        "status": "available", "type": type_,
    }


def build_refund(amount: int, charge: dict, reason, metadata: dict, now: int) -> dict:
    return {
        "id": new_id("re_"), "object": "refund", "amount": amount, "balance_transaction": None,
        "charge": charge["id"], "created": now, "currency": charge["currency"],
        "destination_details": None, "metadata": metadata,
        "payment_intent": charge["payment_intent"], "reason": reason, "receipt_number": None,
        "source_transfer_reversal": None, "status": "succeeded", "transfer_reversal": None,
    }


def build_payout(amount: int, currency: str, arrival: int, now: int) -> dict:
    return {
        "id": new_id("po_"), "object": "payout", "amount": amount, "application_fee": None,
        "application_fee_amount": None, "arrival_date": arrival, "automatic": True,
        "balance_transaction": None, "created": now, "currency": currency,
        "description": "STRIPE PAYOUT", "destination": "ba_" + new_id("", 24),
        "failure_balance_transaction": None, "failure_code": None, "failure_message": None,
        "livemode": False, "metadata": {}, "method": "standard", "original_payout": None,
        "reconciliation_status": "completed", "reversed_by": None, "source_type": "card",
        "statement_descriptor": None, "status": "paid", "trace_id": None, "type": "bank_account",
    }


def build_dispute(charge: dict, reason: str, now: int) -> dict:
    return {
        "id": new_id("dp_"), "object": "dispute", "amount": charge["amount"],
        "balance_transactions": [], "charge": charge["id"], "created": now,
        "currency": charge["currency"], "enhanced_eligibility_types": [],
        "evidence": {"enhanced_evidence": {}},
        "evidence_details": {"due_by": now + 7 * DAY, "enhanced_eligibility": {},
                             "has_evidence": False, "past_due": False, "submission_count": 0},
        "is_charge_refundable": False, "livemode": False, "metadata": {},
        "payment_intent": charge["payment_intent"], "reason": reason, "status": "needs_response",
    }


# --------------------------------------------------------------------------
# HTML pages (hosted checkout and onboarding), built to pass axe WCAG 2.1 AA
# --------------------------------------------------------------------------

PAGE_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2937;background:#fff;
margin:0;line-height:1.5}
main{max-width:34rem;margin:2rem auto;padding:0 1rem}
.banner{background:#fef3c7;color:#1f2937;border:1px solid #92400e;padding:.5rem .75rem;border-radius:4px}
label{display:block;font-weight:600;margin-top:1rem}
input{font-size:1rem;padding:.5rem;border:1px solid #4b5563;border-radius:4px;width:100%;box-sizing:border-box}
button{margin-top:1rem;font-size:1rem;min-height:44px;padding:.6rem 1.4rem;background:#1d4ed8;
color:#fff;border:0;border-radius:4px;cursor:pointer}
button:focus,input:focus,a:focus{outline:3px solid #92400e;outline-offset:2px}
a{color:#1d4ed8}
.action{display:inline-block;min-height:24px;padding:.5rem 0}
.error{color:#b91c1c;font-weight:600}
.hint{color:#374151;font-size:.9rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25rem 0}
"""


def html_page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n"
        f"<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def html_response(status: int, title: str, body: str) -> Response:
    return Response(status, html_page(title, body).encode(), "text/html; charset=utf-8")


def redirect(location: str) -> Response:
    return Response(303, b"", "text/plain", {"Location": location})


def e(value) -> str:
    return html.escape(str(value), quote=True)


TEST_BANNER = ('<p class="banner"><strong>Test mode.</strong> This page is a local stand-in for '
               'Stripe, not Stripe. No real money moves.</p>')


def checkout_page(session: dict, lines: list[dict], error: str | None = None) -> str:
    rows = "".join(
        f"<tr><td>{e(line['name'])} × {line['quantity']}</td>"
        f"<td>{e(format_amount(line['unit_amount'] * line['quantity'], line['currency']))}</td></tr>"
        for line in lines)
    total = format_amount(session["amount_total"], session["currency"])
    described = "card-hint card-error" if error else "card-hint"
    invalid = ' aria-invalid="true"' if error else ""
    error_html = f'<p id="card-error" class="error" role="alert">{e(error)}</p>' if error else ""
    cancel = (f'<p><a class="action" href="{e(session["cancel_url"])}">Cancel and go back</a></p>'
              if session.get("cancel_url") else "")
    return f"""<h1>Test-mode checkout</h1>
{TEST_BANNER}
<h2>Order summary</h2>
<table><caption class="hint">Items in this payment</caption>
<thead><tr><th scope="col">Item</th><th scope="col">Amount</th></tr></thead>
<tbody>{rows}</tbody></table>
<p><strong>Total due: {e(total)}</strong></p>
<form method="post" action="/checkout/{e(session['id'])}" aria-labelledby="pay-heading">
<h2 id="pay-heading">Pay with card</h2>
{error_html}
<label for="card">Card number</label>
<input id="card" name="card" type="text" inputmode="numeric" autocomplete="cc-number"
 required aria-describedby="{described}"{invalid}>
<p id="card-hint" class="hint">Test cards: 4242 4242 4242 4242 succeeds;
4000 0000 0000 0002 is declined; 4000 0000 0000 9995 has insufficient funds.</p>
<button type="submit">Pay</button>
</form>
{cancel}"""


def checkout_closed_page(session: dict) -> str:
    if session["status"] == "complete":
        target = session.get("success_url")
        link = (f'<p><a class="action" href="{e(fill_session_id(target, session["id"]))}">Return to the site</a></p>'
                if target else "")
        return f"<h1>Payment complete</h1>\n{TEST_BANNER}\n<p>This checkout session has already been paid.</p>\n{link}"
    target = session.get("cancel_url")
    link = f'<p><a class="action" href="{e(target)}">Return to the site</a></p>' if target else ""
    return (f"<h1>Checkout expired</h1>\n{TEST_BANNER}\n"
            f"<p>This checkout session has expired. No payment was taken.</p>\n{link}")


def onboarding_page(account: dict, link_path: str) -> str:
    who = account.get("email") or account["id"]
    return f"""<h1>Stripe test-mode onboarding</h1>
{TEST_BANNER}
<p>You are completing Stripe Connect onboarding (test mode) for account
<strong>{e(account['id'])}</strong> ({e(who)}). Submitting marks the account as able to
accept payments and receive payouts.</p>
<form method="post" action="{e(link_path)}" aria-labelledby="details-heading">
<h2 id="details-heading">Business details</h2>
<label for="business_name">Business name</label>
<input id="business_name" name="business_name" type="text" autocomplete="organization" value="Test practice">
<button type="submit">Submit details</button>
</form>"""


def onboarding_expired_page(refresh_url: str | None) -> str:
    link = f'<p><a class="action" href="{e(refresh_url)}">Get a new onboarding link</a></p>' if refresh_url else ""
    return (f"<h1>Onboarding link expired</h1>\n{TEST_BANNER}\n"
            f"<p>This onboarding link has expired or was already used.</p>\n{link}")


def fill_session_id(url: str | None, session_id: str) -> str | None:
    return url.replace("{CHECKOUT_SESSION_ID}", session_id) if url else url


def normalize_card(number: str) -> str:
    return re.sub(r"[\s-]", "", number or "")


# --------------------------------------------------------------------------
# The fake itself: state + API handlers
# --------------------------------------------------------------------------

API_ROUTES = [
    ("POST", r"/v1/accounts", "create_account"),
    ("GET", r"/v1/accounts/(?P<oid>[^/]+)", "retrieve_account"),
    ("POST", r"/v1/account_links", "create_account_link"),
    ("POST", r"/v1/customers", "create_customer"),
    ("GET", r"/v1/customers/(?P<oid>[^/]+)", "retrieve_customer"),
    ("GET", r"/v1/customers/(?P<oid>[^/]+)/payment_methods", "list_customer_payment_methods"),
    ("GET", r"/v1/payment_methods/(?P<oid>[^/]+)", "retrieve_payment_method"),
    ("POST", r"/v1/checkout/sessions", "create_checkout_session"),
    ("GET", r"/v1/checkout/sessions/(?P<oid>[^/]+)", "retrieve_checkout_session"),
    ("POST", r"/v1/checkout/sessions/(?P<oid>[^/]+)/expire", "expire_checkout_session"),
    ("POST", r"/v1/payment_intents", "create_payment_intent"),
    ("GET", r"/v1/payment_intents", "list_payment_intents"),
    ("GET", r"/v1/payment_intents/(?P<oid>[^/]+)", "retrieve_payment_intent"),
    ("GET", r"/v1/charges/(?P<oid>[^/]+)", "retrieve_charge"),
    ("POST", r"/v1/refunds", "create_refund"),
    ("GET", r"/v1/refunds", "list_refunds"),
    ("GET", r"/v1/refunds/(?P<oid>[^/]+)", "retrieve_refund"),
    ("GET", r"/v1/payouts", "list_payouts"),
    ("GET", r"/v1/payouts/(?P<oid>[^/]+)", "retrieve_payout"),
    ("GET", r"/v1/balance_transactions", "list_balance_transactions"),
    ("GET", r"/v1/balance_transactions/(?P<oid>[^/]+)", "retrieve_balance_transaction"),
    ("GET", r"/v1/disputes/(?P<oid>[^/]+)", "retrieve_dispute"),
    ("POST", r"/v1/disputes/(?P<oid>[^/]+)/close", "close_dispute"),
]
CONTROL_ROUTES = [
    ("GET", r"/_fake/clock", "ctl_get_clock"),
    ("POST", r"/_fake/clock", "ctl_set_clock"),
    ("POST", r"/_fake/payouts", "ctl_payout"),
    ("POST", r"/_fake/disputes", "ctl_dispute"),
    ("POST", r"/_fake/disputes/(?P<oid>[^/]+)/decide", "ctl_decide_dispute"),
    ("POST", r"/_fake/onboard", "ctl_onboard"),
    ("POST", r"/_fake/payment_methods", "ctl_set_card"),
    ("GET", r"/_fake/faults", "ctl_list_faults"),
    ("POST", r"/_fake/faults", "ctl_add_fault"),
    ("DELETE", r"/_fake/faults", "ctl_clear_faults"),
    ("GET", r"/_fake/requests", "ctl_requests"),
    ("GET", r"/_fake/objects", "ctl_objects"),
    ("GET", r"/_fake/events", "ctl_events"),
    ("GET", r"/_fake/webhooks", "ctl_webhook_status"),
    ("POST", r"/_fake/webhooks/hold", "ctl_hold"),
    ("POST", r"/_fake/webhooks/url", "ctl_webhook_url"),
    ("POST", r"/_fake/webhooks/release", "ctl_release"),
    ("POST", r"/_fake/reset", "ctl_reset"),
]
PAGE_ROUTES = [
    ("GET", r"/checkout/(?P<oid>[^/]+)", "page_checkout"),
    ("POST", r"/checkout/(?P<oid>[^/]+)", "page_checkout_pay"),
    ("GET", r"/connect/onboard/(?P<oid>[^/]+)", "page_onboard"),
    ("POST", r"/connect/onboard/(?P<oid>[^/]+)", "page_onboard_submit"),
]


def compile_routes(routes):
    return [(method, re.compile(pattern + "$"), name) for method, pattern, name in routes]


class StripeFake:
    def __init__(self, public_url: str, api_key: str | None, webhook_url: str | None,
                 webhook_secret: str) -> None:
        self.public_url = public_url.rstrip("/")
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.clock = Clock()
        self.lock = threading.RLock()
        self.webhooks = WebhookDeliverer(webhook_url, webhook_secret, self.clock)
        self.routes = {"api": compile_routes(API_ROUTES), "ctl": compile_routes(CONTROL_ROUTES),
                       "page": compile_routes(PAGE_ROUTES)}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.objects: dict[str, dict[str, dict]] = {kind: {} for kind in OBJECT_KINDS}
            self.kind_of: dict[str, str] = {}       # object id -> kind
            self.owner: dict[str, str | None] = {}  # object id -> connected account (None = platform)
            self.private: dict[str, dict] = {}      # object id -> fake-only state
            self.seq: dict[str, int] = {}           # object id -> creation order
            self.events: list[dict] = []
            self.requests: list[dict] = []
            self.idempotency: dict[tuple, dict] = {}
            self.faults: list[dict] = []

    # ---- storage -------------------------------------------------------

    def add(self, kind: str, obj: dict, account: str | None, **private) -> dict:
        oid = obj["id"]
        self.objects[kind][oid] = obj
        self.kind_of[oid] = kind
        self.owner[oid] = account
        self.private[oid] = private
        self.seq[oid] = len(self.seq)
        return obj

    def get(self, kind: str, oid: str, account: str | None, param: str = "id") -> dict:
        obj = self.objects[kind].get(oid)
        if obj is None or (kind != "account" and self.owner[oid] != account):
            raise not_found(kind, oid, param)
        return obj

    def owned(self, kind: str, account: str | None) -> list[dict]:
        """Objects of one kind in one account, newest first."""
        items = [o for o in self.objects[kind].values() if self.owner[o["id"]] == account]
        return sorted(items, key=lambda o: (o.get("created", 0), self.seq[o["id"]]), reverse=True)

    # ---- events --------------------------------------------------------

    def emit(self, type_: str, obj: dict, account: str | None, req: ApiRequest | None,
             previous: dict | None = None) -> dict:
        data = {"object": snapshot(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        event = {
            "id": new_id("evt_"), "object": "event", "api_version": API_VERSION,
            "created": self.clock.now(), "data": data, "livemode": False,
            "pending_webhooks": 1 if self.webhooks.url else 0,
            "request": {"id": req.request_id if req else None,
                        "idempotency_key": req.idempotency_key if req else None},
            "type": type_,
        }
        if account:
            event["account"] = account
        body = json.dumps(event, indent=2).encode()
        self.events.append({"id": event["id"], "type": type_, "account": account, "body": body})
        self.webhooks.enqueue(event["id"], type_, body)
        return event

    # ---- request entry points ------------------------------------------

    def handle(self, method: str, path: str, query: str, headers, body: bytes) -> Response:
        for area in ("ctl", "page", "api"):
            for route_method, pattern, name in self.routes[area]:
                match = pattern.match(path)
                if match and route_method == method:
                    if area == "api":
                        return self.handle_api(method, path, query, headers, body, name, match.groupdict())
                    with self.lock:
                        handler = getattr(self, name)
                        if area == "ctl":
                            return handler(query, body, **match.groupdict())
                        return handler(body=body, **match.groupdict())
        if path.startswith("/v1/"):
            return json_response(404, StripeError(
                404, f"Unrecognized request URL ({method}: {path}).").body())
        return html_response(404, "Not found", "<h1>Not found</h1>\n<p>This page does not exist.</p>")

    def handle_api(self, method, path, query, headers, body, name, groups) -> Response:
        account = headers.get("Stripe-Account") or None
        key = headers.get("Idempotency-Key") or None
        entry = {"method": method, "path": path, "query": query, "account": account,
                 "idempotency_key": key, "replayed": False, "status": None, "fault": None}
        with self.lock:
            self.requests.append(entry)
            response = self._api_locked(method, path, query, headers, body, name, groups, entry)
            entry["status"] = response.status
        return response

    def _api_locked(self, method, path, query, headers, body, name, groups, entry) -> Response:
        request_id = new_id("req_", 14)
        base_headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        if entry["idempotency_key"]:
            base_headers["Idempotency-Key"] = entry["idempotency_key"]
        try:
            self.check_auth(headers.get("Authorization"))
            if entry["account"]:
                self.check_connected_account(entry["account"])
        except StripeError as err:
            return json_response(err.status, err.body(), base_headers)

        fault = self.take_fault(method, path)
        entry["fault"] = fault and fault["mode"]
        if fault and fault["mode"] == "error_before":
            return self.fault_response(base_headers, "before")

        raw_body = body.decode("utf-8", "replace")
        scope = (entry["account"] or "", entry["idempotency_key"])
        stored = self.idempotency.get(scope) if method == "POST" and entry["idempotency_key"] else None
        # Stripe compares the parameters, not their order in the body (a map such as
        # `metadata` may be sent in any order).
        fingerprint = (method, path, json.dumps(parse_params(raw_body), sort_keys=True)
                       if method == "POST" else raw_body)
        if stored is not None:
            if stored["fingerprint"] != fingerprint:
                err = StripeError(400, "Keys for idempotent requests can only be used with the same "
                                  "parameters they were first used with. Try using a key other than "
                                  f"'{entry['idempotency_key']}' if you meant to execute a different "
                                  "request.", type_="idempotency_error")
                return json_response(400, err.body(), base_headers)
            entry["replayed"] = True
            response = Response(stored["status"], stored["body"], "application/json",
                                {**base_headers, "Idempotent-Replayed": "true",
                                 "Original-Request": stored["request_id"]})
        else:
            params = Params(parse_params(raw_body if method == "POST" else query))
            req = ApiRequest(method, path, params, entry["account"], entry["idempotency_key"], request_id)
            response = self.run_api_handler(name, req, groups, base_headers)
            if method == "POST" and entry["idempotency_key"] and (
                    200 <= response.status < 300 or response.status == 402):
                self.idempotency[scope] = {"fingerprint": fingerprint, "status": response.status,
                                           "body": response.body, "request_id": request_id}
        return self.apply_fault_after(fault, response, base_headers)

    def run_api_handler(self, name: str, req: ApiRequest, groups: dict, headers: dict) -> Response:
        try:
            obj = getattr(self, name)(req, **groups)
            if req.params.expand():
                obj = self.expand(snapshot(obj), req.params.expand())
            return json_response(200, obj, headers)
        except StripeError as err:
            return json_response(err.status, err.body(), headers)

    def check_auth(self, authorization: str | None) -> None:
        key = None
        if authorization and authorization.startswith("Bearer "):
            key = authorization[len("Bearer "):].strip()
        elif authorization and authorization.startswith("Basic "):
            try:
                key = base64.b64decode(authorization[6:]).decode().split(":")[0]
            except ValueError:
                key = None
        ok = key == self.api_key if self.api_key else bool(key and key.startswith("sk_test_"))
        if not ok:
            shown = f"Invalid API Key provided: {key[:8]}{'*' * 8}" if key else (
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
            raise StripeError(401, shown)

    def check_connected_account(self, account: str) -> None:
        if account not in self.objects["account"]:
            raise StripeError(403, f"The provided key does not have access to account '{account}' "
                              "(or that account does not exist). Application access may have been "
                              "revoked.", code="account_invalid")

    # ---- faults --------------------------------------------------------

    def take_fault(self, method: str, path: str) -> dict | None:
        for fault in self.faults:
            method_ok = fault["method"] in ("*", method)
            pattern = fault["path"]
            path_ok = path.startswith(pattern[:-1]) if pattern.endswith("*") else path == pattern
            if method_ok and path_ok and fault["count"] > 0:
                fault["count"] -= 1
                if fault["count"] == 0:
                    self.faults.remove(fault)
                return dict(fault)
        return None

    @staticmethod
    def fault_response(headers: dict, when: str) -> Response:
        err = StripeError(500, f"(stripe-fake) injected server error {when} doing the work.",
                          type_="api_error")
        return json_response(500, err.body(), headers)

    def apply_fault_after(self, fault: dict | None, response: Response, headers: dict) -> Response:
        if not fault:
            return response
        if fault["mode"] == "error_after":
            return self.fault_response(headers, "after")
        if fault["mode"] == "timeout_after":
            response.delay = float(fault.get("seconds", 5))
        return response

    # ---- expansion -----------------------------------------------------

    def expand(self, obj: dict, paths: list[str]) -> dict:
        for path in paths:
            self._expand_path(obj, path.split("."))
        return obj

    def _expand_path(self, obj, parts: list[str]) -> None:
        if not isinstance(obj, dict) or not parts:
            return
        head, rest = parts[0], parts[1:]
        if obj.get("object") == "list" and head == "data":
            for item in obj["data"]:
                self._expand_path(item, rest)
            return
        value = obj.get(head)
        if isinstance(value, str) and value in self.kind_of:
            value = obj[head] = snapshot(self.objects[self.kind_of[value]][value])
        self._expand_path(value, rest)

    # ---- lists ---------------------------------------------------------

    def list_page(self, items: list[dict], req: ApiRequest, url: str, kind: str) -> dict:
        p = req.params
        items = [o for o in items if created_filter_matches(o.get("created", 0), p.raw("created"))]
        limit = p.integer("limit")
        limit = 10 if limit is None else limit
        if not 1 <= limit <= 100:
            raise StripeError(400, "Invalid integer: limit must be between 1 and 100",
                              code="parameter_invalid_integer", param="limit")
        ids = [o["id"] for o in items]
        after, before = p.text("starting_after"), p.text("ending_before")
        for cursor, param in ((after, "starting_after"), (before, "ending_before")):
            if cursor and cursor not in self.objects[kind]:
                raise not_found(kind, cursor, param)
        if after:
            items = items[ids.index(after) + 1:] if after in ids else []
        elif before:
            items = items[:ids.index(before)] if before in ids else []
            return {"object": "list", "data": items[-limit:], "has_more": len(items) > limit, "url": url}
        return {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": url}

    # ---- accounts and onboarding ----------------------------------------

    def create_account(self, req: ApiRequest) -> dict:
        acct = build_account(req.params, self.clock.now())
        return self.add("account", acct, None)

    def retrieve_account(self, req: ApiRequest, oid: str) -> dict:
        return self.get("account", oid, None, "account")

    def create_account_link(self, req: ApiRequest) -> dict:
        p = req.params
        acct = self.get("account", p.text("account", required=True), None, "account")
        p.text("type", required=True, choices=("account_onboarding", "account_update"))
        now = self.clock.now()
        link_id = new_id("al_", 24)
        link = {"object": "account_link", "created": now, "expires_at": now + ACCOUNT_LINK_TTL,
                "url": f"{self.public_url}/connect/onboard/{link_id}", "id": link_id}
        self.add("account_link", link, None, for_account=acct["id"], used=False,
                 refresh_url=p.text("refresh_url"), return_url=p.text("return_url"))
        return {k: v for k, v in link.items() if k != "id"}

    def onboard(self, account_id: str, business_name: str | None) -> dict:
        acct = self.objects["account"][account_id]
        previous = {k: snapshot(acct[k]) for k in
                    ("charges_enabled", "payouts_enabled", "details_submitted", "requirements", "capabilities")}
        acct.update(charges_enabled=True, payouts_enabled=True, details_submitted=True)
        requested = acct["capabilities"] or {"card_payments": "inactive", "transfers": "inactive"}
        acct["capabilities"] = {name: "active" for name in requested}
        acct["requirements"] = {"alternatives": [], "current_deadline": None, "currently_due": [],
                                "disabled_reason": None, "errors": [], "eventually_due": [],
                                "past_due": [], "pending_verification": []}
        if business_name:
            acct["business_profile"]["name"] = business_name
        self.emit("account.updated", acct, acct["id"], None, previous)
        return acct

    def live_link(self, link_id: str) -> dict | None:
        link = self.objects["account_link"].get(link_id)
        if link is None:
            return None
        state = self.private[link_id]
        if state["used"] or self.clock.now() > link["expires_at"]:
            return None
        return link

    def page_onboard(self, body: bytes, oid: str) -> Response:
        if oid not in self.objects["account_link"]:
            return html_response(404, "Onboarding link not found",
                                 "<h1>Onboarding link not found</h1>\n<p>This link does not exist.</p>")
        state = self.private[oid]
        if not self.live_link(oid):
            return html_response(200, "Onboarding link expired", onboarding_expired_page(state["refresh_url"]))
        acct = self.objects["account"][state["for_account"]]
        return html_response(200, "Stripe test-mode onboarding", onboarding_page(acct, f"/connect/onboard/{oid}"))

    def page_onboard_submit(self, body: bytes, oid: str) -> Response:
        if oid not in self.objects["account_link"]:
            return html_response(404, "Onboarding link not found",
                                 "<h1>Onboarding link not found</h1>\n<p>This link does not exist.</p>")
        state = self.private[oid]
        if not self.live_link(oid):
            return html_response(410, "Onboarding link expired", onboarding_expired_page(state["refresh_url"]))
        form = parse_params(body.decode("utf-8", "replace"))
        self.onboard(state["for_account"], form.get("business_name") or None)
        state["used"] = True
        if state["return_url"]:
            return redirect(state["return_url"])
        return html_response(200, "Onboarding complete",
                             "<h1>Onboarding complete</h1>\n<p>You can close this page.</p>")

    # ---- customers and payment methods ----------------------------------

    def create_customer(self, req: ApiRequest) -> dict:
        return self.add("customer", build_customer(req.params, self.clock.now()), req.account)

    def retrieve_customer(self, req: ApiRequest, oid: str) -> dict:
        return self.get("customer", oid, req.account)

    def retrieve_payment_method(self, req: ApiRequest, oid: str) -> dict:
        return self.get("payment_method", oid, req.account)

    def list_customer_payment_methods(self, req: ApiRequest, oid: str) -> dict:
        self.get("customer", oid, req.account, "customer")
        items = [pm for pm in self.owned("payment_method", req.account) if pm["customer"] == oid]
        return self.list_page(items, req, f"/v1/customers/{oid}/payment_methods", "payment_method")

    def new_payment_method(self, number: str, account, customer=None, email=None) -> dict:
        pm = build_payment_method(number, customer, email, self.clock.now())
        return self.add("payment_method", pm, account, card_number=number)

    # ---- checkout sessions ---------------------------------------------

    def create_checkout_session(self, req: ApiRequest) -> dict:
        p = req.params
        p.text("mode", required=True, choices=("payment",))
        self.require_charges_enabled(req.account)
        lines = self.parse_line_items(p.raw("line_items"))
        customer = p.text("customer")
        if customer:
            self.get("customer", customer, req.account, "customer")
            if p.text("customer_email"):
                raise StripeError(400, "You may only specify one of these parameters: customer, customer_email.",
                                  param="customer_email")
        pid = p.raw("payment_intent_data") or {}
        pid = pid if isinstance(pid, dict) else {}
        sfu = pid.get("setup_future_usage")
        if sfu not in (None, "", "off_session", "on_session"):
            raise StripeError(400, f"Invalid payment_intent_data[setup_future_usage]: {sfu}",
                              param="payment_intent_data[setup_future_usage]")
        session = build_checkout_session(p, lines, self.public_url, self.clock.now())
        if session["amount_total"] < MIN_CHARGE:
            raise StripeError(400, "The Checkout Session's total amount due must add up to at least "
                              f"{format_amount(MIN_CHARGE, session['currency'])} {session['currency']}",
                              code="amount_too_small", param="line_items")
        return self.add("checkout_session", session, req.account, lines=lines,
                        pi_metadata=string_map(pid.get("metadata"), "payment_intent_data[metadata]"),
                        pi_description=pid.get("description") or None,
                        setup_future_usage=sfu or None)

    @staticmethod
    def parse_line_items(raw) -> list[dict]:
        if not isinstance(raw, list) or not raw:
            raise StripeError(400, "Missing required param: line_items.", code="parameter_missing",
                              param="line_items")
        lines = []
        for i, item in enumerate(raw):
            prefix = f"line_items[{i}]"
            price = item.get("price_data") if isinstance(item, dict) else None
            if not isinstance(price, dict):
                raise StripeError(400, f"stripe-fake supports only {prefix}[price_data].",
                                  code="parameter_missing", param=f"{prefix}[price_data]")
            product = price.get("product_data") or {}
            name = product.get("name") if isinstance(product, dict) else None
            if not name:
                raise StripeError(400, f"Missing required param: {prefix}[price_data][product_data][name].",
                                  code="parameter_missing", param=f"{prefix}[price_data][product_data][name]")
            lines.append({
                "name": name,
                "currency": (price.get("currency") or "").lower() or _missing(f"{prefix}[price_data][currency]"),
                "unit_amount": to_int(price.get("unit_amount"), f"{prefix}[price_data][unit_amount]", True),
                "quantity": to_int(item.get("quantity"), f"{prefix}[quantity]", True),
            })
        if len({line["currency"] for line in lines}) != 1:
            raise StripeError(400, "All line items must use the same currency.", param="line_items")
        return lines

    def require_charges_enabled(self, account: str | None) -> None:
        if account and not self.objects["account"][account]["charges_enabled"]:
            raise StripeError(400, f"The account {account} cannot create charges yet: its card_payments "
                              "capability is not active (stripe-fake: complete onboarding first).",
                              code="account_invalid")

    def refresh_session(self, session: dict) -> dict:
        """Expire an open session whose expires_at has passed (on the fake clock)."""
        if session["status"] == "open" and self.clock.now() >= session["expires_at"]:
            self.expire_session(session, None)
        return session

    def expire_session(self, session: dict, req: ApiRequest | None) -> None:
        session["status"] = "expired"
        self.emit("checkout.session.expired", session, self.owner[session["id"]], req)

    def retrieve_checkout_session(self, req: ApiRequest, oid: str) -> dict:
        return self.refresh_session(self.get("checkout_session", oid, req.account))

    def expire_checkout_session(self, req: ApiRequest, oid: str) -> dict:
        session = self.refresh_session(self.get("checkout_session", oid, req.account))
        if session["status"] != "open":
            raise StripeError(400, 'Only Checkout Sessions with a status in ["open"] can be expired.',
                              code="checkout_session_expired" if session["status"] == "expired" else None)
        self.expire_session(session, req)
        return session

    def page_checkout(self, body: bytes, oid: str) -> Response:
        session = self.objects["checkout_session"].get(oid)
        if session is None:
            return html_response(404, "Checkout not found",
                                 "<h1>Checkout not found</h1>\n<p>This checkout session does not exist.</p>")
        self.refresh_session(session)
        if session["status"] != "open":
            return html_response(200, "Checkout closed", checkout_closed_page(session))
        return html_response(200, "Test-mode checkout", checkout_page(session, self.private[oid]["lines"]))

    def page_checkout_pay(self, body: bytes, oid: str) -> Response:
        session = self.objects["checkout_session"].get(oid)
        if session is None:
            return self.page_checkout(body, oid)
        self.refresh_session(session)
        if session["status"] != "open":
            return html_response(409, "Checkout closed", checkout_closed_page(session))
        lines = self.private[oid]["lines"]
        number = normalize_card(parse_params(body.decode("utf-8", "replace")).get("card", ""))
        if number not in TEST_CARDS:
            return html_response(400, "Test-mode checkout", checkout_page(
                session, lines, "Your card number is incorrect. Use a test card such as 4242 4242 4242 4242."))
        _, decline_code, message = TEST_CARDS[number]
        if decline_code:
            return html_response(402, "Test-mode checkout", checkout_page(session, lines, message))
        self.complete_session(session, number)
        target = fill_session_id(session.get("success_url"), session["id"])
        if target:
            return redirect(target)
        return html_response(200, "Payment complete", checkout_closed_page(session))

    def complete_session(self, session: dict, number: str) -> None:
        account = self.owner[session["id"]]
        state = self.private[session["id"]]
        customer_id = session["customer"]
        email = session["customer_email"]
        if customer_id:
            email = self.objects["customer"][customer_id]["email"] or email
        elif state["setup_future_usage"]:
            customer = build_customer(Params({"email": email} if email else {}), self.clock.now())
            customer_id = self.add("customer", customer, account)["id"]
            session["customer"] = customer_id
        saved = state["setup_future_usage"] is not None
        pm = self.new_payment_method(number, account, customer_id if saved else None, email)
        pi = build_payment_intent(session["amount_total"], session["currency"], customer_id,
                                  dict(state["pi_metadata"]), self.clock.now(),
                                  description=state["pi_description"],
                                  setup_future_usage=state["setup_future_usage"])
        self.add("payment_intent", pi, account)
        self.charge_payment_intent(pi, pm, account)
        session.update(status="complete", payment_status="paid", payment_intent=pi["id"],
                       customer_details={"address": None, "email": email, "name": None, "phone": None,
                                         "tax_exempt": "none", "tax_ids": []})
        self.emit("checkout.session.completed", session, account, None)
        self.emit("payment_intent.succeeded", pi, account, None)

    # ---- payment intents and charges -----------------------------------

    def charge_payment_intent(self, pi: dict, pm: dict, account) -> tuple | None:
        """Run the card; returns (decline_code, message) on decline, None on success."""
        _, decline_code, message = TEST_CARDS[self.private[pm["id"]]["card_number"]]
        decline = (decline_code, message) if decline_code else None
        charge = self.add("charge", build_charge(pi, pm, self.clock.now(), decline), account)
        pi["latest_charge"] = charge["id"]
        if decline:
            pi.update(status="requires_payment_method", payment_method=None, last_payment_error={
                "type": "card_error", "code": "card_declined", "decline_code": decline_code,
                "message": message, "charge": charge["id"], "payment_method": snapshot(pm),
                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            })
            return decline
        txn = build_balance_transaction(pi["amount"], fee_for(pi["amount"]), pi["currency"],
                                        charge["id"], "charge", "charge", None, self.clock.now())
        self.add("balance_transaction", txn, account, payout=None)
        charge["balance_transaction"] = txn["id"]
        pi.update(status="succeeded", payment_method=pm["id"], amount_received=pi["amount"],
                  last_payment_error=None)
        return None

    def resolve_payment_method(self, pm_id: str, account, customer) -> dict:
        if pm_id in MAGIC_PAYMENT_METHODS:
            return self.new_payment_method(MAGIC_PAYMENT_METHODS[pm_id], account)
        pm = self.objects["payment_method"].get(pm_id)
        if pm is None or self.owner[pm_id] != account:
            raise StripeError(400, f"No such PaymentMethod: '{pm_id}'", code="resource_missing",
                              param="payment_method")
        if pm["customer"] and customer and pm["customer"] != customer:
            raise StripeError(400, f"The PaymentMethod {pm_id} does not belong to the Customer you "
                              "supplied " + customer + ".", param="payment_method")
        return pm

    def create_payment_intent(self, req: ApiRequest) -> dict:
        p = req.params
        amount = p.integer("amount", required=True)
        currency = p.text("currency", required=True).lower()
        if amount < MIN_CHARGE:
            raise StripeError(400, f"Amount must be at least {format_amount(MIN_CHARGE, currency)} {currency}",
                              code="amount_too_small", param="amount")
        self.require_charges_enabled(req.account)
        customer = p.text("customer")
        if customer:
            self.get("customer", customer, req.account, "customer")
        pm_id = p.text("payment_method")
        pm = self.resolve_payment_method(pm_id, req.account, customer) if pm_id else None
        if p.flag("confirm") and not pm:
            raise StripeError(400, "You cannot confirm this PaymentIntent because it's missing a payment "
                              "method.", code="payment_intent_unexpected_state", param="payment_method")
        pi = build_payment_intent(amount, currency, customer, p.metadata(), self.clock.now(),
                                  description=p.text("description"),
                                  setup_future_usage=p.text("setup_future_usage"),
                                  receipt_email=p.text("receipt_email"))
        self.add("payment_intent", pi, req.account)
        if not p.flag("confirm"):
            if pm:
                pi.update(status="requires_confirmation", payment_method=pm["id"])
            return pi
        decline = self.charge_payment_intent(pi, pm, req.account)
        if decline:
            self.emit("payment_intent.payment_failed", pi, req.account, req)
            error = pi["last_payment_error"]
            raise StripeError(402, error["message"], type_="card_error", code="card_declined",
                              decline_code=error["decline_code"], charge=error["charge"],
                              payment_intent=snapshot(pi), payment_method=snapshot(pm))
        self.emit("payment_intent.succeeded", pi, req.account, req)
        return pi

    def retrieve_payment_intent(self, req: ApiRequest, oid: str) -> dict:
        return self.get("payment_intent", oid, req.account, "intent")

    def list_payment_intents(self, req: ApiRequest) -> dict:
        items = self.owned("payment_intent", req.account)
        customer = req.params.text("customer")
        if customer:
            items = [pi for pi in items if pi["customer"] == customer]
        return self.list_page(items, req, "/v1/payment_intents", "payment_intent")

    def retrieve_charge(self, req: ApiRequest, oid: str) -> dict:
        return self.get("charge", oid, req.account, "charge")

    # ---- refunds -------------------------------------------------------

    def create_refund(self, req: ApiRequest) -> dict:
        p = req.params
        charge = self.refundable_charge(p.text("payment_intent"), p.text("charge"), req.account)
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining <= 0:
            raise StripeError(400, f"Charge {charge['id']} has already been refunded.",
                              code="charge_already_refunded")
        amount = p.integer("amount")
        amount = remaining if amount is None else amount
        if amount <= 0:
            raise StripeError(400, "Invalid positive integer", code="parameter_invalid_integer", param="amount")
        if amount > remaining:
            cur = charge["currency"]
            raise StripeError(400, f"Refund amount ({format_amount(amount, cur)}) is greater than "
                              f"unrefunded amount on charge ({format_amount(remaining, cur)})",
                              code="amount_too_large", param="amount")
        refund = build_refund(amount, charge, p.text("reason", choices=REFUND_REASONS), p.metadata(),
                              self.clock.now())
        txn = build_balance_transaction(-amount, 0, charge["currency"], refund["id"], "refund", "refund",
                                        "REFUND FOR CHARGE", self.clock.now())
        self.add("balance_transaction", txn, req.account, payout=None)
        refund["balance_transaction"] = txn["id"]
        self.add("refund", refund, req.account)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        charge["refunds"]["data"].insert(0, snapshot(refund))
        self.emit("charge.refunded", charge, req.account, req)
        self.emit("refund.created", refund, req.account, req)
        return refund

    def refundable_charge(self, pi_id: str | None, charge_id: str | None, account) -> dict:
        if pi_id:
            pi = self.get("payment_intent", pi_id, account, "payment_intent")
            if pi["status"] != "succeeded":
                raise StripeError(400, f"This PaymentIntent ({pi_id}) does not have a successful charge "
                                  "to refund.", code="charge_not_refundable", param="payment_intent")
            charge_id = pi["latest_charge"]
        elif not charge_id:
            raise StripeError(400, "One of the following params should be provided for this request: "
                              "payment_intent or charge.", code="parameter_missing")
        charge = self.get("charge", charge_id, account, "charge")
        if charge["disputed"]:
            raise StripeError(400, f"Charge {charge_id} has been charged back; cannot issue a refund.",
                              code="charge_disputed")
        return charge

    def retrieve_refund(self, req: ApiRequest, oid: str) -> dict:
        return self.get("refund", oid, req.account, "refund")

    def list_refunds(self, req: ApiRequest) -> dict:
        items = self.owned("refund", req.account)
        for name in ("payment_intent", "charge"):
            wanted = req.params.text(name)
            if wanted:
                items = [r for r in items if r[name] == wanted]
        return self.list_page(items, req, "/v1/refunds", "refund")

    # ---- payouts, balance transactions, disputes -------------------------

    def list_payouts(self, req: ApiRequest) -> dict:
        items = self.owned("payout", req.account)
        status = req.params.text("status")
        if status:
            items = [po for po in items if po["status"] == status]
        for name in ("arrival_date",):
            items = [po for po in items if created_filter_matches(po[name], req.params.raw(name))]
        return self.list_page(items, req, "/v1/payouts", "payout")

    def retrieve_payout(self, req: ApiRequest, oid: str) -> dict:
        return self.get("payout", oid, req.account, "payout")

    def list_balance_transactions(self, req: ApiRequest) -> dict:
        items = self.owned("balance_transaction", req.account)
        payout = req.params.text("payout")
        if payout:
            self.get("payout", payout, req.account, "payout")
            items = [t for t in items if self.private[t["id"]]["payout"] == payout]
        for name in ("type", "source", "currency"):
            wanted = req.params.text(name)
            if wanted:
                items = [t for t in items if t[name] == wanted]
        return self.list_page(items, req, "/v1/balance_transactions", "balance_transaction")

    def retrieve_balance_transaction(self, req: ApiRequest, oid: str) -> dict:
        return self.get("balance_transaction", oid, req.account)

    def retrieve_dispute(self, req: ApiRequest, oid: str) -> dict:
        return self.get("dispute", oid, req.account, "dispute")

    def close_dispute(self, req: ApiRequest, oid: str) -> dict:
        """Accepting a dispute: it is lost at once (the funds stay withdrawn)."""
        dispute = self.get("dispute", oid, req.account, "dispute")
        if dispute["status"] in ("won", "lost"):
            raise StripeError(400, f"This dispute is already closed ({dispute['status']}).",
                              code="dispute_already_closed")
        self.decide_dispute(dispute, "lost", req)
        return dispute

    def decide_dispute(self, dispute: dict, status: str, req: ApiRequest | None) -> None:
        account = self.owner[dispute["id"]]
        if status == "won":
            now = self.clock.now()
            charge = self.objects["charge"][dispute["charge"]]
            txn = build_balance_transaction(dispute["amount"], -DISPUTE_FEE, dispute["currency"],
                                            dispute["id"], "adjustment", "dispute_reversal",
                                            f"Chargeback reversal for {charge['id']}", now)
            self.add("balance_transaction", txn, account, payout=None)
            dispute["balance_transactions"].append(snapshot(txn))
            dispute["status"] = "won"
            self.emit("charge.dispute.funds_reinstated", dispute, account, req)
        else:
            dispute["status"] = "lost"
        self.emit("charge.dispute.closed", dispute, account, req)

    def create_payout(self, account: str | None, arrival: int | None) -> dict:
        pending = [t for t in self.owned("balance_transaction", account)
                   if self.private[t["id"]]["payout"] is None]
        total = sum(t["net"] for t in pending)
        if not pending or total <= 0:
            raise StripeError(400, f"Nothing to pay out for {account or 'the platform'}: "
                              f"{len(pending)} unpaid balance transactions, net {total}.")
        now = self.clock.now()
        currency = pending[0]["currency"]
        payout = self.add("payout", build_payout(total, currency, arrival or now, now), account)
        txn = build_balance_transaction(-total, 0, currency, payout["id"], "payout", "payout",
                                        "STRIPE PAYOUT", now)
        self.add("balance_transaction", txn, account, payout=payout["id"])
        payout["balance_transaction"] = txn["id"]
        for t in pending:
            self.private[t["id"]]["payout"] = payout["id"]
        self.emit("payout.paid", payout, account, None)
        return payout

    def create_dispute(self, pi_id: str, reason: str) -> dict:
        if pi_id not in self.objects["payment_intent"]:
            raise not_found("payment_intent", pi_id, "payment_intent")
        account = self.owner[pi_id]
        pi = self.objects["payment_intent"][pi_id]
        if pi["status"] != "succeeded":
            raise StripeError(400, f"PaymentIntent {pi_id} has no successful charge to dispute.")
        charge = self.objects["charge"][pi["latest_charge"]]
        if charge["disputed"]:
            raise StripeError(400, f"Charge {charge['id']} is already disputed.")
        now = self.clock.now()
        dispute = build_dispute(charge, reason, now)
        txn = build_balance_transaction(-dispute["amount"], DISPUTE_FEE, charge["currency"],
                                        dispute["id"], "adjustment", "dispute",
                                        f"Chargeback withdrawal for {charge['id']}", now)
        self.add("balance_transaction", txn, account, payout=None)
        dispute["balance_transactions"] = [snapshot(txn)]
        charge["disputed"] = True
        self.add("dispute", dispute, account)
        self.emit("charge.dispute.created", dispute, account, None)
        return dispute

    # ---- control endpoints (/_fake/...) ---------------------------------

    @staticmethod
    def json_body(body: bytes) -> dict:
        if not body.strip():
            return {}
        try:
            value = json.loads(body)
        except ValueError:
            raise StripeError(400, "stripe-fake control endpoints take a JSON body")
        return value if isinstance(value, dict) else {}

    def control(self, fn) -> Response:
        try:
            return json_response(200, fn())
        except StripeError as err:
            return json_response(err.status, err.body())

    def ctl_get_clock(self, query, body) -> Response:
        return json_response(200, {"now": self.clock.now(), "real": int(time.time())})

    def ctl_set_clock(self, query, body) -> Response:
        def run():
            data = self.json_body(body)
            if "now" in data:
                self.clock.set(float(data["now"]))
            elif "advance" in data:
                self.clock.set(self.clock.now() + float(data["advance"]))
            else:
                raise StripeError(400, 'expected {"now": <unix seconds>} or {"advance": <seconds>}')
            return {"now": self.clock.now()}
        return self.control(run)

    def ctl_payout(self, query, body) -> Response:
        def run():
            data = self.json_body(body)
            account = data.get("account")
            if account and account not in self.objects["account"]:
                raise not_found("account", account, "account")
            return self.create_payout(account, data.get("arrival_date"))
        return self.control(run)

    def ctl_dispute(self, query, body) -> Response:
        def run():
            data = self.json_body(body)
            return self.create_dispute(data.get("payment_intent", ""), data.get("reason", "fraudulent"))
        return self.control(run)

    def ctl_decide_dispute(self, query, body, oid) -> Response:
        def run():
            status = self.json_body(body).get("status", "")
            if status not in ("won", "lost"):
                raise StripeError(400, "status must be won or lost")
            dispute = self.objects["dispute"].get(oid)
            if dispute is None:
                raise not_found("dispute", oid, "dispute")
            if dispute["status"] in ("won", "lost"):
                raise StripeError(400, f"This dispute is already closed ({dispute['status']}).")
            self.decide_dispute(dispute, status, None)
            return dispute
        return self.control(run)

    def ctl_onboard(self, query, body) -> Response:
        def run():
            account = self.json_body(body).get("account", "")
            if account not in self.objects["account"]:
                raise not_found("account", account, "account")
            return self.onboard(account, None)
        return self.control(run)

    def ctl_set_card(self, query, body) -> Response:
        """{"payment_method": "pm_...", "card": "4000000000009995"}: later charges behave like that card."""
        def run():
            data = self.json_body(body)
            pm = self.objects["payment_method"].get(data.get("payment_method", ""))
            number = normalize_card(data.get("card", ""))
            if pm is None or number not in TEST_CARDS:
                raise StripeError(400, "need an existing payment_method and a known test card number")
            self.private[pm["id"]]["card_number"] = number
            pm["card"] = card_details(number, self.clock.now())
            return pm
        return self.control(run)

    def ctl_list_faults(self, query, body) -> Response:
        return json_response(200, {"faults": self.faults})

    def ctl_add_fault(self, query, body) -> Response:
        def run():
            data = self.json_body(body)
            mode = data.get("mode")
            if mode not in ("error_before", "error_after", "timeout_after") or not data.get("path"):
                raise StripeError(400, "fault needs path and mode error_before|error_after|timeout_after")
            fault = {"method": (data.get("method") or "*").upper(), "path": data["path"], "mode": mode,
                     "count": int(data.get("count", 1)), "seconds": float(data.get("seconds", 5))}
            self.faults.append(fault)
            return {"faults": self.faults}
        return self.control(run)

    def ctl_clear_faults(self, query, body) -> Response:
        self.faults.clear()
        return json_response(200, {"faults": []})

    def ctl_requests(self, query, body) -> Response:
        return json_response(200, {"requests": self.requests})

    def ctl_objects(self, query, body) -> Response:
        q = dict(urllib.parse.parse_qsl(query))
        kind = q.get("type", "")
        if kind not in OBJECT_KINDS:
            return json_response(400, StripeError(400, f"type must be one of {', '.join(OBJECT_KINDS)}").body())
        items = [o for o in self.objects[kind].values()
                 if "account" not in q or self.owner[o["id"]] == (q["account"] or None)]
        return json_response(200, {"object": "list", "data": items})

    def ctl_events(self, query, body) -> Response:
        now = self.clock.now()
        events = [{"id": ev["id"], "type": ev["type"], "account": ev["account"],
                   "body": ev["body"].decode(),
                   "signature": signature_header(self.webhook_secret, ev["body"], now)}
                  for ev in self.events]
        return json_response(200, {"events": events})

    def ctl_webhook_status(self, query, body) -> Response:
        return json_response(200, self.webhooks.status())

    def ctl_webhook_url(self, query, body) -> Response:
        def run():
            data = self.json_body(body)
            url, host = data.get("url"), data.get("host")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise StripeError(400, "url must be an http(s) URL")
            self.webhooks.set_url(url, host if isinstance(host, str) else None)
            return self.webhooks.status()
        return self.control(run)

    def ctl_hold(self, query, body) -> Response:
        self.webhooks.hold()
        return json_response(200, self.webhooks.status())

    def ctl_release(self, query, body) -> Response:
        def run():
            data = self.json_body(body)
            count = self.webhooks.release(bool(data.get("shuffle")), bool(data.get("twice")), data.get("seed"))
            return {"released": count}
        return self.control(run)

    def ctl_reset(self, query, body) -> Response:
        self.reset()
        return json_response(200, {"reset": True})


def _missing(param: str):
    raise StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


# --------------------------------------------------------------------------
# HTTP plumbing and command line
# --------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stripe-fake/1.0"
    # Headers and body leave in two writes; with Nagle's algorithm on a kept-alive connection
    # the body then waits for the client's delayed ACK (40 ms a response), which Stripe does
    # not make anyone wait.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args) -> None:
        if self.server.verbose:
            super().log_message(fmt, *args)

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    def dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        try:
            response = self.server.fake.handle(method, path, query, self.headers, body)
        except Exception as err:  # a bug in the fake: answer like Stripe's 500
            response = json_response(500, StripeError(500, f"stripe-fake internal error: {err!r}",
                                                      type_="api_error").body())
            print(f"stripe-fake: error handling {method} {path}: {err!r}", file=sys.stderr, flush=True)
        if response.delay:
            time.sleep(response.delay)
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Local stateful fake of the Stripe API (test mode only; not Stripe).")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = pick a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--public-url", help="base URL for hosted pages (default http://127.0.0.1:PORT)")
    parser.add_argument("--webhook-url", help="POST every event here, signed")
    parser.add_argument("--webhook-secret", default="whsec_stripe_fake", help="signing secret")
    parser.add_argument("--api-key", help="the only accepted secret key (default: any sk_test_...)")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    server = Server((args.host, args.port), Handler)
    port = server.server_address[1]
    server.verbose = args.verbose
    server.fake = StripeFake(args.public_url or f"http://127.0.0.1:{port}", args.api_key,
                             args.webhook_url, args.webhook_secret)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on {port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
