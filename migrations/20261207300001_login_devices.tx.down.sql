DROP TABLE login_devices;
--bun:split
DELETE FROM login_throttles WHERE kind = 'account';
