/*
 * route_guide_db.h: the route guide's feature database (a JSON file of
 * {"location": {"latitude": N, "longitude": N}, "name": "..."} objects, the
 * shape of gRPC's route_guide_db.json) and the geometry both programs use.
 */
#ifndef ROUTE_GUIDE_DB_H
#define ROUTE_GUIDE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rg_feature {
  char *name; /* UTF-8; "" means no feature at this point */
  int32_t latitude;
  int32_t longitude;
} rg_feature;

typedef struct rg_db {
  rg_feature *features;
  size_t n;
} rg_db;

/*
 * Loads |path| into |db|. Returns 0, or -1 with a reason (including the
 * byte offset of a syntax error) in |err|.
 */
int rg_db_load(rg_db *db, const char *path, char *err, size_t errlen);

/* Parses a JSON text of |len| bytes; same returns as rg_db_load(). */
int rg_db_parse(rg_db *db, const char *text, size_t len, char *err,
                size_t errlen);

void rg_db_free(rg_db *db);

/* The feature at exactly this point, or NULL. */
const rg_feature *rg_db_find(const rg_db *db, int32_t latitude,
                             int32_t longitude);

/* Whether the point lies inside the rectangle spanned by two corners given
 * in any order (borders included). */
bool rg_in_rect(int32_t lo_lat, int32_t lo_lon, int32_t hi_lat, int32_t hi_lon,
                int32_t lat, int32_t lon);

/* Great-circle distance in metres between two E7 points (haversine). */
double rg_distance(int32_t lat1, int32_t lon1, int32_t lat2, int32_t lon2);

#endif /* ROUTE_GUIDE_DB_H */
