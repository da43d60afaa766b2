-- The duty desk an operator's token belongs to: its alert list and live stream hold the alerts
-- that reached that desk ([[desk]] in site.toml), and it may handle only those. NULL: no desk
-- (the command centre), every alert.
ALTER TABLE api_tokens ADD COLUMN desk TEXT;
