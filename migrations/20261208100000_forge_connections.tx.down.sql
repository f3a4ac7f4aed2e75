DROP TABLE forge_connections;
