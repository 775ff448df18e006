-- Phase 2: one membership row per user, and roles pointing at memberships.
-- The roles are filled by a batched backfill that ferry runs after this
-- file's transaction commits; the verify queries run after it.
-- ferry:up
INSERT INTO "UsuarioCooperativa" (usuario_id, cooperativa_id, fecha_ingreso, activo)
SELECT id, cooperativa_id, fecha_creacion, activo
FROM "Usuario"
WHERE cooperativa_id IS NOT NULL;

ALTER TABLE "UsuarioRol" ADD COLUMN usuario_cooperativa_id varchar(36);

-- ferry:backfill "UsuarioRol"
--   set   usuario_cooperativa_id = (SELECT uc.id FROM "UsuarioCooperativa" uc WHERE uc.usuario_id = "UsuarioRol".usuario_id AND uc.cooperativa_id = "UsuarioRol".cooperativa_id)
--   where usuario_cooperativa_id IS NULL
--   batch_rows 20

-- ferry:down
ALTER TABLE "UsuarioRol" DROP COLUMN usuario_cooperativa_id;
DELETE FROM "UsuarioCooperativa";

-- ferry:verify
-- No orphaned membership (user or cooperative gone).
SELECT uc.id, uc.usuario_id, uc.cooperativa_id
FROM "UsuarioCooperativa" uc
LEFT JOIN "Usuario" u ON uc.usuario_id = u.id
LEFT JOIN "Cooperativa" c ON uc.cooperativa_id = c.id
WHERE u.id IS NULL OR c.id IS NULL;
-- Every role points at a membership.
SELECT ur.id, ur.usuario_id, ur.cooperativa_id
FROM "UsuarioRol" ur
LEFT JOIN "UsuarioCooperativa" uc ON ur.usuario_cooperativa_id = uc.id
WHERE uc.id IS NULL;
-- Counts before and after: one active membership per user that had a cooperative.
SELECT (SELECT count(*) FROM "Usuario_backup_20241015" WHERE cooperativa_id IS NOT NULL)
     = (SELECT count(DISTINCT usuario_id) FROM "UsuarioCooperativa" WHERE activo);
-- The membership keeps the user's cooperative (seed 004's cross-check).
SELECT u.id, u.cooperativa_id, uc.cooperativa_id
FROM "Usuario" u JOIN "UsuarioCooperativa" uc ON uc.usuario_id = u.id
WHERE uc.cooperativa_id <> u.cooperativa_id;
