/* The floor for `status` of any program built on Debian's libpq: connect,
 * read the history once, exit. Used by bench/status-floor.sh; with no
 * argument it exits before connecting (the cost of loading libpq alone). */
#include <libpq-fe.h>
#include <stdio.h>

int main(int argc, char** argv) {
  if (argc < 2) return 0;
  PGconn* conn = PQconnectdb(argv[1]);
  if (PQstatus(conn) != CONNECTION_OK) {
    fprintf(stderr, "%s", PQerrorMessage(conn));
    return 1;
  }
  PGresult* res = PQexec(conn, "SELECT version, checksum FROM ferry_schema_history");
  int rows = PQntuples(res);
  PQclear(res);
  PQfinish(conn);
  printf("%d\n", rows);
  return 0;
}
