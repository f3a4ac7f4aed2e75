DROP TABLE budgets;
--bun:split
DROP TABLE usage_records;
--bun:split
DROP TABLE gateway_tokens;
