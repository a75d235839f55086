-- A payment's receipt is printed only when someone opens it (the bills page asks for it), not
-- when the payment is taken: most receipts are never opened, and printing every one at the
-- moment of payment was most of the database's work in a burst of card payments. What still
-- goes at once is the email that says a payment arrived, sent by one job for a whole batch of
-- payments; this marks each payment whose email went (or that had no address to go to), so a
-- retry of the batch after the mail server refused halfway does not email anyone twice.
-- Payments taken before this column existed stay NULL: no job names them again.
ALTER TABLE payments ADD COLUMN receipt_noticed_at timestamptz NULL;
