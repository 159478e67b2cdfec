-- Calls made with a key the user brought themselves: recorded like any other, but outside the organisation's monthly budget.
ALTER TABLE ai_usage ADD COLUMN own_key INTEGER NOT NULL DEFAULT 0;
