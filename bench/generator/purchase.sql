-- pgbench: one purchase with the generator's statement shape (pick a customer and listings
-- by a random probe into the id range, insert the header, insert its lines, commit).
\set u random(0, 999999)
BEGIN;
SELECT t.id AS customer_id FROM customer AS t
WHERE t.country_code IS NOT NULL AND t.id >= (
    SELECT min(id) + floor(:u / 1000000.0 * (max(id) - min(id) + 1))::bigint FROM customer)
ORDER BY t.id LIMIT 1 \gset
SELECT t.id AS listing_id FROM game_listing AS t
WHERE t.id >= (SELECT min(id) + floor(:u / 1000000.0 * (max(id) - min(id)))::bigint FROM game_listing)
ORDER BY t.id LIMIT 1 \gset
INSERT INTO store_transaction (transaction_code, transaction_type, occurred_at, currency,
    total_amount, customer_id)
VALUES ('PGB' || substr(md5(random()::text), 1, 20), 'sale', now(), 'USD', 39.98, :customer_id)
RETURNING id AS txn_id \gset
INSERT INTO store_transaction_line (transaction_id, line_number, transaction_type, currency,
    game_id, platform, publisher_id, region, gross_amount, fee_amount, net_amount)
SELECT :txn_id, row_number() OVER (), 'sale', 'USD', game_id, platform, publisher_id, 'NA',
    19.99, 6.00, 13.99
FROM (SELECT game_id, platform, publisher_id FROM game_listing WHERE id >= :listing_id
      ORDER BY id LIMIT 2) AS listing;
COMMIT;
