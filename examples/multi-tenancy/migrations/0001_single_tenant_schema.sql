-- The schema before the change (seed 004): every user belongs to exactly one
-- cooperative through "Usuario".cooperativa_id, and roles repeat both ids.
-- ferry:up
CREATE TABLE "Cooperativa" (
  id varchar(36) PRIMARY KEY,
  nombre text NOT NULL
);
CREATE TABLE "Usuario" (
  id varchar(36) PRIMARY KEY,
  email text NOT NULL UNIQUE,
  cooperativa_id varchar(36) REFERENCES "Cooperativa"(id),
  fecha_creacion timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  activo boolean NOT NULL DEFAULT true
);
CREATE TABLE "UsuarioRol" (
  id integer PRIMARY KEY,
  usuario_id varchar(36) NOT NULL REFERENCES "Usuario"(id),
  cooperativa_id varchar(36) NOT NULL REFERENCES "Cooperativa"(id),
  rol text NOT NULL
);
-- Sample data: 3 cooperatives, 30 users, 2 roles each.
INSERT INTO "Cooperativa" (id, nombre)
SELECT 'coop-' || g, 'Cooperativa ' || g FROM generate_series(1, 3) g;
INSERT INTO "Usuario" (id, email, cooperativa_id, fecha_creacion)
SELECT 'user-' || g, 'user' || g || '@example.org', 'coop-' || (1 + g % 3),
       timestamp '2024-01-01' + g * interval '1 day'
FROM generate_series(1, 30) g;
INSERT INTO "UsuarioRol" (id, usuario_id, cooperativa_id, rol)
SELECT 2 * g + r, 'user-' || g, 'coop-' || (1 + g % 3), CASE r WHEN 0 THEN 'socio' ELSE 'lector' END
FROM generate_series(1, 30) g, generate_series(0, 1) r;

-- ferry:down
DROP TABLE "UsuarioRol";
DROP TABLE "Usuario";
DROP TABLE "Cooperativa";
