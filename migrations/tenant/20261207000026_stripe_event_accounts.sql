-- The billing account of the payment an event names, found once when the event is kept rather
-- than on every look of the drain's lanes: each lane picked its events by joining every waiting
-- event to its payment, so during a burst, with thousands waiting, the drain's four lanes made
-- thousands of payment lookups for every hundred events they applied. NULL (lane 0): the event
-- names no payment of this clinic (refunds, payouts, disputes, the account), or it was applied
-- or set aside before this column existed, or kept by a process that did not fill it yet.
ALTER TABLE stripe_events ADD COLUMN account_ref uuid NULL;

UPDATE stripe_events e
SET account_ref = coalesce(
        (SELECT p.account_id FROM payments p WHERE p.id = e.payment_ref),
        (SELECT c.account_id FROM payments c
         WHERE e.object_type = 'checkout.session' AND c.stripe_checkout_session = e.object_id))
WHERE e.applied_at IS NULL AND e.failure IS NULL;
