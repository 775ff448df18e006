-- Phase 3: drop the single-tenant columns, add the new foreign key.
-- The down section is seed 004's rollback script: the columns come back,
-- filled from the memberships.
-- ferry:up
ALTER TABLE "Usuario" DROP COLUMN cooperativa_id;
ALTER TABLE "UsuarioRol" DROP COLUMN usuario_id;
ALTER TABLE "UsuarioRol" DROP COLUMN cooperativa_id;
-- UsuarioRol holds one row per role a member has (thousands, not millions):
-- the scans below take well under a second, and keeping phase 3 in one
-- transaction means a failure rolls all of it back. On a large table, split
-- these into NOT VALID + VALIDATE and CREATE INDEX CONCURRENTLY migrations.
-- ferry:lint-ignore set-not-null small table (one row per member role), phase 3 stays one transaction
ALTER TABLE "UsuarioRol" ALTER COLUMN usuario_cooperativa_id SET NOT NULL;
-- ferry:lint-ignore constraint-without-not-valid small tables, checked in the same transaction as the drops
ALTER TABLE "UsuarioRol"
  ADD CONSTRAINT fk_usuario_rol_usuario_cooperativa
  FOREIGN KEY (usuario_cooperativa_id) REFERENCES "UsuarioCooperativa"(id);
-- ferry:lint-ignore create-index-non-concurrently small table; CONCURRENTLY would split phase 3 out of its transaction
CREATE INDEX idx_usuario_rol_usuario_cooperativa ON "UsuarioRol"(usuario_cooperativa_id);

-- ferry:down
ALTER TABLE "Usuario" ADD COLUMN cooperativa_id varchar(36) REFERENCES "Cooperativa"(id);
UPDATE "Usuario" u
SET cooperativa_id = uc.cooperativa_id
FROM "UsuarioCooperativa" uc
WHERE u.id = uc.usuario_id AND uc.activo;
ALTER TABLE "UsuarioRol" ADD COLUMN usuario_id varchar(36) REFERENCES "Usuario"(id);
ALTER TABLE "UsuarioRol" ADD COLUMN cooperativa_id varchar(36) REFERENCES "Cooperativa"(id);
UPDATE "UsuarioRol" ur
SET usuario_id = uc.usuario_id, cooperativa_id = uc.cooperativa_id
FROM "UsuarioCooperativa" uc
WHERE ur.usuario_cooperativa_id = uc.id;
ALTER TABLE "UsuarioRol" ALTER COLUMN usuario_id SET NOT NULL;
ALTER TABLE "UsuarioRol" ALTER COLUMN cooperativa_id SET NOT NULL;
DROP INDEX idx_usuario_rol_usuario_cooperativa;
ALTER TABLE "UsuarioRol" DROP CONSTRAINT fk_usuario_rol_usuario_cooperativa;
ALTER TABLE "UsuarioRol" ALTER COLUMN usuario_cooperativa_id DROP NOT NULL;

-- ferry:verify
SELECT ur.id FROM "UsuarioRol" ur
LEFT JOIN "UsuarioCooperativa" uc ON uc.id = ur.usuario_cooperativa_id
WHERE uc.id IS NULL;
