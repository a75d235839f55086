-- Staff roles that mean something: "staff" becomes "front_desk" (scheduling, demographics,
-- invitations). Audit rows keep the code they were written with (the trail is append-only);
-- the application reads "staff" there as front desk.
ALTER TABLE users DROP CONSTRAINT users_role_check;
UPDATE users SET role = 'front_desk' WHERE role = 'staff';
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN
    ('patient', 'proxy', 'clinician', 'front_desk', 'billing', 'clinic_admin'));
