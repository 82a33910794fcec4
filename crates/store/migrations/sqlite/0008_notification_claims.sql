-- Claims on the signal-notification outbox, as trade_notices has (0005): a sender claims a queued row before
-- sending it, so two processes never both send it, and a crashed sender's claim runs out and the row is sent
-- again. After a transient failure the claim is set to when the next attempt is due, so every process
-- honours the backoff. Keep it in step with ../postgres/0008_notification_claims.sql.
--
-- ADD COLUMN only: a table rebuild would drop the triggers 0003_fanout.sql put on this table. The claim
-- scans the queued rows in id order, which the partial index signal_notifications_queued (0001) already
-- serves; no new index.
ALTER TABLE signal_notifications ADD COLUMN claimed_until TEXT;
