-- The desk's baseline catalogue (the spellings of domain.md). Admins may add rows later; re-running is harmless.

insert into branches (code, sort) values
    ('SOMAJIGUDA', 1), ('ATTAPUR', 2), ('KOMPALLY', 3), ('MALAKPET', 4), ('SRINAGAR COLONY', 5),
    ('TOLICHOWKI', 6), ('VANASTHALIPURAM', 7)
on conflict do nothing;

insert into sources (code, sort) values ('GOOGLE', 1), ('META', 2), ('BTL', 3), ('OEM', 4)
on conflict do nothing;

insert into sub_sources (source, sub_source, uid_letter, sort) values
    ('GOOGLE', 'Google Know', 'G', 1),
    ('META', 'Meta Know', 'M', 1),
    ('BTL', 'BTL Know', 'B', 1),
    ('OEM', 'Web', 'X', 1),
    ('OEM', 'Tele', 'T', 2),
    ('OEM', 'Affiliate Bikewale', 'A', 3),
    ('OEM', 'Affiliate Bikedekho', 'A', 4),
    ('OEM', 'Affiliate 91 Wheels', 'A', 5)
on conflict do nothing;

insert into models (name, sort) values
    ('Rizta S Mono (2.9 kWh)', 1), ('Rizta S Super Matte (2.9 kWh)', 2), ('Rizta Z Mono (2.9 kWh)', 3),
    ('Rizta Z Duo (2.9 kWh)', 4), ('Rizta Z Super Matte (2.9 kWh)', 5), ('Rizta Z Mono (3.7 kWh)', 6),
    ('Rizta Z Duo (3.7 kWh)', 7), ('Rizta Z Super Matte (3.7 kWh)', 8), ('450 X (2.9 kWh)', 9),
    ('450 X (3.7 kWh)', 10), ('450 X (2.9 kWh) Pro Pack', 11), ('450 X (3.7 kWh) Pro Pack', 12),
    ('450 Apex STD', 13)
on conflict do nothing;

insert into lead_statuses (name, first_call, non_contact, sort) values
    ('RNR', true, true, 1),
    ('Busy on another Call', true, true, 2),
    ('Call me Back', true, true, 3),
    ('Call Disconnected', true, true, 4),
    ('Interested', true, false, 5),
    ('Not Interested', true, false, 6),
    ('Did Not Inquire', true, false, 7),
    ('Wrong Number', true, false, 8),
    ('Lost to Co Dealer', true, false, 9),
    ('Lost to Competition', true, false, 10),
    ('Lead Already Assigned', true, false, 11),
    ('Customer Visited Experience Centre', true, false, 12),
    ('Call not Connected', false, true, 13),
    ('Retailed', false, false, 14),
    ('Discount Issue', false, false, 15),
    ('Delayed', false, false, 16),
    ('Booked', false, false, 17),
    ('Test Drive', false, false, 18),
    ('Talked to PS', false, false, 19),
    ('Finance Rejected', false, false, 20),
    ('Dropped', false, false, 21),
    ('Out of Station', false, false, 22)
on conflict do nothing;
