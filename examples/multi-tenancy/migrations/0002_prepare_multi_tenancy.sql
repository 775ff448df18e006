-- Phase 1 (no downtime): the new membership table, its indexes, and backup
-- copies of the tables the next steps change.
-- ferry:up
CREATE TABLE "UsuarioCooperativa" (
  id varchar(36) PRIMARY KEY DEFAULT gen_random_uuid()::text,
  usuario_id varchar(36) NOT NULL REFERENCES "Usuario"(id),
  cooperativa_id varchar(36) NOT NULL REFERENCES "Cooperativa"(id),
  fecha_ingreso timestamp DEFAULT CURRENT_TIMESTAMP,
  activo boolean DEFAULT true,
  UNIQUE (usuario_id, cooperativa_id)
);
CREATE INDEX idx_usuario_cooperativa_usuario ON "UsuarioCooperativa"(usuario_id);
CREATE INDEX idx_usuario_cooperativa_cooperativa ON "UsuarioCooperativa"(cooperativa_id);
CREATE TABLE "Usuario_backup_20241015" AS SELECT * FROM "Usuario";
CREATE TABLE "UsuarioRol_backup_20241015" AS SELECT * FROM "UsuarioRol";

-- ferry:down
DROP TABLE "UsuarioRol_backup_20241015";
DROP TABLE "Usuario_backup_20241015";
DROP TABLE "UsuarioCooperativa";

-- ferry:verify
-- The backups hold every row.
SELECT (SELECT count(*) FROM "Usuario_backup_20241015") = (SELECT count(*) FROM "Usuario");
SELECT (SELECT count(*) FROM "UsuarioRol_backup_20241015") = (SELECT count(*) FROM "UsuarioRol");
