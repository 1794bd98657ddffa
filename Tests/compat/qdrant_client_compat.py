"""Runs Qdrant's late-interaction recipe through the real qdrant-client against `tessera serve`, and checks
every answer twice: against the client's local mode (QdrantClient(":memory:"), a Python statement of Qdrant's
semantics) and against Tessera's own pipeline run outside the server (`tessera query`). Exits non-zero on the
first difference."""

import argparse
import hashlib
import io
import json
import tarfile
import threading
import urllib.request
import random
import subprocess
import sys
import urllib.error
import urllib.request
import warnings

from qdrant_client import QdrantClient, models

parser = argparse.ArgumentParser()
parser.add_argument("--url", required=True)
parser.add_argument("--tessera", required=True)
parser.add_argument("--data", required=True)
parser.add_argument("--older-client", action="store_true", help="an older pin: skip the version check")
args = parser.parse_args()

# The server reports the Qdrant API version it follows; the newest client must accept it without a warning.
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    remote = QdrantClient(url=args.url, prefer_grpc=False, timeout=30, check_compatibility=not args.older_client)
    remote.get_collections()
if not args.older_client:
    incompatible = [str(w.message) for w in caught if "ompatib" in str(w.message)]
    if incompatible:
        sys.exit(f"compat: FAILED: the client warns on connect: {incompatible}")
local = QdrantClient(":memory:")
NAME = "late"
checks = 0


def fail(message):
    print(f"compat: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def near_tie_order(ours, theirs):
    """Qdrant leaves the order of equal scores open (its server orders ties as its heaps and segments fall; local
    mode as numpy's sort does), and local mode scores in doubles where the server scores in 32-bit floats, so
    scores a float cannot tell apart are ties too. Returns ours reordered as local mode has them, when the only
    differences in order are among points whose local scores are within a relative 1e-7."""
    if sorted(p.id for p in ours) != sorted(p.id for p in theirs):
        return None
    position = {p.id: i for i, p in enumerate(theirs)}
    reordered = sorted(ours, key=lambda p: position[p.id])
    for a, b in zip(ours, reordered):
        if a.id != b.id:
            x, y = theirs[position[a.id]].score, theirs[position[b.id]].score
            if abs(x - y) > 1e-7 * max(1.0, abs(x)):
                return None
    return reordered


def same_points(what, ours, theirs, tolerance=1e-4):
    global checks
    ours_ids = [p.id for p in ours]
    theirs_ids = [p.id for p in theirs]
    if ours_ids != theirs_ids:
        ours = near_tie_order(ours, theirs)
        if ours is None:
            fail(f"{what}: ids {ours_ids} != local mode {theirs_ids}")
    for a, b in zip(ours, theirs):
        if abs(a.score - b.score) > tolerance * max(1.0, abs(b.score)):
            fail(f"{what}: score of {a.id} {a.score} != local mode {b.score}")
        if a.payload != b.payload:
            fail(f"{what}: payload of {a.id} {a.payload} != local mode {b.payload}")
    checks += 1


def same_top(what, ours, wide, limit, tolerance=1e-4):
    """Ours is a top `limit` of local mode's wider list `wide` when ties are cut by the limit: each of our points
    has local mode's score for it, which is the score local mode has at that rank (Qdrant leaves open which of
    the points tied at the limit make it)."""
    global checks
    local_scores = {p.id: p.score for p in wide}
    if len(ours) != min(limit, len(wide)) or len({p.id for p in ours}) != len(ours):
        fail(f"{what}: {[p.id for p in ours]} is not a top {limit} of local mode's {[p.id for p in wide]}")
    for rank, point in enumerate(ours):
        theirs = local_scores.get(point.id)
        if theirs is None or abs(theirs - point.score) > tolerance * max(1.0, abs(theirs)) or \
                abs(wide[rank].score - point.score) > tolerance * max(1.0, abs(theirs)):
            fail(f"{what}: {point.id} scores {point.score} at rank {rank}; local mode gives it {theirs}, and "
                 f"{wide[rank].score} at that rank")
    checks += 1


def fresh_collection(name, **config):
    """Creates `name` anew in the server and in local mode."""
    for client in (remote, local):
        if client.collection_exists(name):
            client.delete_collection(name)
        client.create_collection(name, **config)


def both(call):
    return call(remote), call(local)


# Collection: a dense field and a multivector field, as in Qdrant's late-interaction guide.
for client in (remote, local):
    if client.collection_exists(NAME):
        client.delete_collection(NAME)
    client.create_collection(
        NAME,
        vectors_config={
            "dense": models.VectorParams(size=8, distance=models.Distance.COSINE),
            "colbert": models.VectorParams(
                size=4,
                distance=models.Distance.COSINE,
                multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
                hnsw_config=models.HnswConfigDiff(m=0),
            ),
        },
    )
if not remote.collection_exists(NAME) or remote.collection_exists("missing"):
    fail("collection_exists")
if NAME not in [c.name for c in remote.get_collections().collections]:
    fail("get_collections does not list the collection")
# Collection info parses into the client's models, with the vector parameters as created.
info = remote.get_collection(NAME)
vectors = info.config.params.vectors
if set(vectors) != {"dense", "colbert"} or vectors["dense"].size != 8 or vectors["colbert"].size != 4:
    fail(f"get_collection: vectors {vectors}")
if vectors["colbert"].multivector_config.comparator != models.MultiVectorComparator.MAX_SIM:
    fail("get_collection: the multivector field lost its comparator")
if vectors["dense"].distance != models.Distance.COSINE or vectors["colbert"].hnsw_config.m != 0:
    fail("get_collection: distance or hnsw_config differs")
checks += 1

rng = random.Random(7)


def vector(size):
    return [rng.uniform(-1, 1) for _ in range(size)]


points = []
for i in range(80):
    points.append(
        models.PointStruct(
            id=i,
            vector={"dense": vector(8), "colbert": [vector(4) for _ in range(rng.randint(1, 6))]},
            payload={"group": i % 3, "title": f"document {i}", "even": i % 2 == 0},
        )
    )
for client in (remote, local):
    client.upsert(NAME, points=points[:50], wait=True)
    client.upsert(
        NAME,
        points=models.Batch(
            ids=[p.id for p in points[50:]],
            vectors={
                "dense": [p.vector["dense"] for p in points[50:]],
                "colbert": [p.vector["colbert"] for p in points[50:]],
            },
            payloads=[p.payload for p in points[50:]],
        ),
        wait=True,
    )
if remote.count(NAME, exact=True).count != 80:
    fail("count after upsert")
if remote.get_collection(NAME).points_count != 80:
    fail("points_count after upsert")

group_one = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=1))])
queries = []
for q in range(5):
    dense_query = vector(8)
    token_query = [vector(4) for _ in range(3)]
    # Dense prefetch, then the multivector rerank, with a filter (Qdrant's recipe). Qdrant applies the root's
    # filter to the prefetch as well; local mode of client 1.15 did not, so for that pin the prefetch names it too.
    rerank = dict(
        prefetch=models.Prefetch(
            query=dense_query, using="dense", limit=20, filter=group_one if args.older_client else None
        ),
        query=token_query,
        using="colbert",
        query_filter=group_one,
        limit=5,
        with_payload=True,
    )
    ours, theirs = both(lambda c: c.query_points(NAME, **rerank).points)
    same_points(f"prefetch → rerank {q}", ours, theirs)
    if not all(p.payload["group"] == 1 for p in ours):
        fail("the filter did not hold")
    queries.append(("rerank", rerank))
    # Fusion of a dense and a multivector list.
    for fusion in (models.Fusion.RRF, models.Fusion.DBSF):
        fused = dict(
            prefetch=[
                models.Prefetch(query=dense_query, using="dense", limit=15),
                models.Prefetch(query=token_query, using="colbert", limit=15),
            ],
            query=models.FusionQuery(fusion=fusion),
            limit=10,
            with_payload=True,
        )
        ours, theirs = both(lambda c: c.query_points(NAME, **fused).points)
        same_points(f"{fusion} {q}", ours, theirs)
    # A plain dense and a plain multivector query, with offset and a score threshold.
    ours, theirs = both(lambda c: c.query_points(NAME, query=dense_query, using="dense", limit=7, offset=2).points)
    same_points(f"dense {q}", ours, theirs)
    threshold = ours[3].score
    ours, theirs = both(
        lambda c: c.query_points(NAME, query=token_query, using="colbert", limit=30, score_threshold=threshold).points
    )
    same_points(f"multivector threshold {q}", ours, theirs)

# Vectors with the results: the stored (unit) vectors of the fields asked for.
probe = vector(8)
ours, theirs = both(lambda c: c.query_points(NAME, query=probe, using="dense", limit=3, with_vectors=["colbert"]).points)
same_points("with_vectors", ours, theirs)
for a, b in zip(ours, theirs):
    if set(a.vector) != {"colbert"} or len(a.vector["colbert"]) != len(b.vector["colbert"]):
        fail(f"with_vectors: {a.vector} != local mode {b.vector}")
    if any(abs(x - y) > 1e-5 for r, s in zip(a.vector["colbert"], b.vector["colbert"]) for x, y in zip(r, s)):
        fail("with_vectors: the returned token vectors differ")

# By point id: the point's own vector, the point itself left out.
ours, theirs = both(lambda c: c.query_points(NAME, query=5, using="dense", limit=4).points)
same_points("query by id", ours, theirs)

# Batch.
requests = [models.QueryRequest(query=vector(8), using="dense", limit=3) for _ in range(3)]
ours, theirs = both(lambda c: c.query_batch_points(NAME, requests=requests))
for a, b in zip(ours, theirs):
    same_points("batch", a.points, b.points)

# Retrieve with vectors: cosine fields store unit vectors, as in Qdrant.
ours, theirs = both(lambda c: c.retrieve(NAME, ids=[3, 4, 77], with_vectors=True))
for a, b in zip(sorted(ours, key=lambda p: p.id), sorted(theirs, key=lambda p: p.id)):
    for field in ("dense", "colbert"):
        mine = a.vector[field]
        reference = b.vector[field]
        flat_mine = [x for row in mine for x in row] if field == "colbert" else mine
        flat_reference = [x for row in reference for x in row] if field == "colbert" else reference
        if len(flat_mine) != len(flat_reference) or any(abs(x - y) > 1e-5 for x, y in zip(flat_mine, flat_reference)):
            fail(f"retrieve: vector {field} of {a.id} differs")
    if a.payload != b.payload:
        fail("retrieve: payload differs")
checks += 1

# Scroll: id order, pages of 7, next_page_offset.
def scroll_all(client):
    ids, offset = [], None
    while True:
        records, offset = client.scroll(NAME, scroll_filter=group_one, limit=7, offset=offset, with_payload=True)
        ids += [r.id for r in records]
        if offset is None:
            return ids


ours, theirs = both(scroll_all)
if ours != theirs:
    fail(f"scroll: {ours} != local mode {theirs}")
checks += 1

# Payload edits, deletes by id and by filter, counts.
for client in (remote, local):
    client.set_payload(NAME, payload={"flag": "x"}, points=[1, 2, 3], wait=True)
    client.overwrite_payload(NAME, payload={"only": 1}, points=[4], wait=True)
    client.delete(NAME, points_selector=models.PointIdsList(points=[0, 10, 20]), wait=True)
    client.delete(
        NAME,
        points_selector=models.FilterSelector(
            filter=models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=2))])
        ),
        wait=True,
    )
ours, theirs = both(lambda c: c.retrieve(NAME, ids=[1, 2, 3, 4]))
if sorted((p.id, json.dumps(p.payload, sort_keys=True)) for p in ours) != sorted(
    (p.id, json.dumps(p.payload, sort_keys=True)) for p in theirs
):
    fail("payload edits differ")
ours, theirs = both(lambda c: c.count(NAME, exact=True).count)
if ours != theirs:
    fail(f"count after deletes {ours} != local mode {theirs}")
ours, theirs = both(lambda c: c.count(NAME, count_filter=group_one, exact=True).count)
if ours != theirs:
    fail(f"filtered count {ours} != local mode {theirs}")
checks += 2

# with_payload selectors on nested payloads: include and exclude key paths, through retrieve, scroll and query.
nested = {"meta": {"a": 1, "b": {"c": 2, "d": 3}}, "items": [{"x": 1, "y": 2}, {"x": 3}, 4], "code": "k", "ratio": 5.0}
for client in (remote, local):
    client.set_payload(NAME, payload=nested, points=[1, 7], wait=True)
# A float with no fraction stays a float (5.0, not 5), as in local mode: compared as JSON text, where 5 != 5.0.
ours, theirs = both(lambda c: json.dumps(c.retrieve(NAME, ids=[7])[0].payload, sort_keys=True))
if ours != theirs or '"ratio": 5.0' not in ours:
    fail(f"float payload value: {ours} != local mode {theirs}")
checks += 1
selectors = [
    ["meta.b.c"],
    ["meta.b", "title"],
    ["meta.nope", "code.x"],
    ["items[].x"],
    ["items.x"],
    models.PayloadSelectorInclude(include=["meta.a", "items[].y"]),
    models.PayloadSelectorExclude(exclude=["meta.b.d"]),
    models.PayloadSelectorExclude(exclude=["items[].y", "group"]),
    models.PayloadSelectorExclude(exclude=["items[]", "nope.x", "code.x"]),
]
for selector in selectors:
    ours, theirs = both(lambda c: [(p.id, p.payload) for p in c.retrieve(NAME, ids=[1, 7, 4], with_payload=selector)])
    if sorted(ours, key=lambda r: r[0]) != sorted(theirs, key=lambda r: r[0]):
        fail(f"retrieve with_payload={selector}: {ours} != local mode {theirs}")
    ours, theirs = both(
        lambda c: [(p.id, p.payload) for p in c.scroll(NAME, scroll_filter=group_one, limit=100, with_payload=selector)[0]]
    )
    if ours != theirs:
        fail(f"scroll with_payload={selector}: {ours} != local mode {theirs}")
    query = vector(8)
    ours, theirs = both(
        lambda c: c.query_points(NAME, query=query, using="dense", limit=5, with_payload=selector).points
    )
    same_points(f"query with_payload={selector}", ours, theirs)
    checks += 2
try:
    remote.retrieve(NAME, ids=[1], with_payload=["items[0].x"])
    fail("an array index in with_payload was accepted")
except Exception as error:
    if "400" not in str(error) or "array index" not in str(error):
        fail(f"array index in with_payload: {error}")
checks += 1

# values_count, on arrays, scalars, null and empty arrays. Only lower bounds: client 1.15's local mode reads a
# missing key as no match at all, where Qdrant and later clients count it as 0 values.
for client in (remote, local):
    client.set_payload(NAME, payload={"tags": ["a", "b", "c"]}, points=[6, 7], wait=True)
    client.set_payload(NAME, payload={"tags": ["a"]}, points=[9], wait=True)
    client.set_payload(NAME, payload={"tags": []}, points=[12], wait=True)
    client.set_payload(NAME, payload={"tags": None}, points=[13], wait=True)
    client.set_payload(NAME, payload={"tags": "solo"}, points=[15], wait=True)
for bounds in ({"gt": 1}, {"gte": 1}, {"gte": 1, "lte": 1}, {"gt": 0, "lt": 3}, {"gte": 3}):
    counted = models.Filter(must=[models.FieldCondition(key="tags", values_count=models.ValuesCount(**bounds))])
    ours, theirs = both(lambda c: sorted(p.id for p in c.scroll(NAME, scroll_filter=counted, limit=100)[0]))
    if ours != theirs or not ours:
        fail(f"values_count {bounds}: {ours} != local mode {theirs}")
checks += 1

# The sections below need the newest client's local mode as the reference: client 1.15's local mode shared objects
# between points on set_payload and kept members set to null. The older pin does not run them.
def newest_only():
    global checks
    # Payload writes: a nested `key` (objects, `[]` and `[0]` paths), null removing a member, delete_payload with
    # nested keys by ids and by filter, clear_payload; the payloads compared with local mode after every step.
    edited = [21, 22, 24, 25, 27, 28, 30]
    french = models.Filter(must=[models.FieldCondition(key="meta.country", match=models.MatchValue(value="FR"))])
    payload_steps = [
        lambda c: c.set_payload(NAME, payload={"meta": {"city": "Paris", "zip": 75}}, points=[30, 21, 22], wait=True),
        lambda c: c.set_payload(NAME, payload={"zip": None, "country": "FR"}, key="meta", points=[30, 21], wait=True),
        lambda c: c.set_payload(NAME, payload={"lat": 48.8}, key="meta.geo", points=[21, 22], wait=True),
        lambda c: c.set_payload(NAME, payload={"x": 1}, key="title.inner", points=[28], wait=True),
        lambda c: c.set_payload(NAME, payload={"rooms": [{"n": 1}, {"n": 2}, 3]}, points=[27, 24], wait=True),
        lambda c: c.set_payload(NAME, payload={"free": True}, key="rooms[]", points=[27], wait=True),
        lambda c: c.set_payload(NAME, payload={"first": True}, key="rooms[0]", points=[24], wait=True),
        lambda c: c.set_payload(NAME, payload={"title": None, "new": [1, 2.5]}, points=[25], wait=True),
        lambda c: c.delete_payload(NAME, keys=["meta.geo", "rooms[].n"], points=[21, 27], wait=True),
        lambda c: c.delete_payload(NAME, keys=["even", "rooms[]"], points=models.FilterSelector(filter=french), wait=True),
        lambda c: c.delete_payload(NAME, keys=["rooms[0]", "meta.missing.deeper"], points=[24], wait=True),
        lambda c: c.clear_payload(NAME, points_selector=[22], wait=True),
        lambda c: c.clear_payload(NAME, points_selector=models.FilterSelector(filter=french), wait=True),
    ]
    for step_number, step in enumerate(payload_steps):
        step(remote)
        step(local)
        ours = {p.id: p.payload for p in remote.retrieve(NAME, ids=edited)}
        theirs = {p.id: p.payload for p in local.retrieve(NAME, ids=edited)}
        if ours != theirs:
            fail(f"payload step {step_number}: {ours} != local mode {theirs}")
        checks += 1
    # A missing id: the others are written, then a 404 naming it.
    for client in (remote, local):
        try:
            client.set_payload(NAME, payload={"late": 1}, points=[28, 999, 25], wait=True)
            fail("set_payload with a missing id succeeded")
        except Exception as error:
            if client is remote and ("404" not in str(error) or "999" not in str(error)):
                fail(f"set_payload with a missing id: {error}")
    ours = {p.id: p.payload for p in remote.retrieve(NAME, ids=edited)}
    if ours != {p.id: p.payload for p in local.retrieve(NAME, ids=edited)} or ours[25].get("late") != 1:
        fail(f"set_payload with a missing id: the others were not written as local mode writes them: {ours}")
    try:
        remote.set_payload(NAME, payload={"x": 1}, key="meta..city", points=[30], wait=True)
        fail("a malformed key was accepted")
    except Exception as error:
        if "400" not in str(error) or "meta..city" not in str(error):
            fail(f"malformed key: {error}")
    checks += 2
    # scroll with order_by: numbers, floats, arrays (a point listed once per distinct value), date-times, missing
    # keys, both directions, start_from, with a filter; ids and order values compared with local mode.
    for client in (remote, local):
        for i in edited:
            price = [i % 7, 3.5] if i % 4 == 0 else (i * 1.25 if i % 3 else i)
            client.set_payload(NAME, payload={"price": price, "when": f"2026-0{1 + i % 9}-1{i % 10}T10:00:00Z"},
                               points=[i], wait=True)
        client.set_payload(NAME, payload={"price": True, "when": "not a date"}, points=[1], wait=True)
    orders = [
        "price",
        models.OrderBy(key="price", direction=models.Direction.DESC),
        models.OrderBy(key="price", start_from=20),
        models.OrderBy(key="price", direction=models.Direction.DESC, start_from=10.5),
        models.OrderBy(key="when", direction=models.Direction.DESC),
        models.OrderBy(key="when", start_from="2026-04-01T00:00:00Z"),
    ]
    for order in orders:
        for scroll_filter in (None, group_one):
            ours, theirs = both(
                lambda c: c.scroll(NAME, order_by=order, scroll_filter=scroll_filter, limit=6, with_payload=True)
            )
            key = lambda page: [(p.id, p.order_value, json.dumps(p.payload, sort_keys=True)) for p in page[0]]
            if key(ours) != key(theirs) or ours[1] is not None or not ours[0]:
                fail(f"scroll order_by {order} filter {scroll_filter}: {key(ours)} != local mode {key(theirs)}")
            checks += 1
    try:
        remote.scroll(NAME, order_by="price", offset=3)
        fail("order_by with an offset was accepted")
    except Exception as error:
        if "400" not in str(error) or "order_by" not in str(error):
            fail(f"order_by with an offset: {error}")
    checks += 1

    # Aliases: create, read through, list, rename, delete; refusals for a missing collection and a taken name.
    def alias_list(client, collection=None):
        found = client.get_collection_aliases(collection) if collection else client.get_aliases()
        return sorted((a.alias_name, a.collection_name) for a in found.aliases)

    for client in (remote, local):
        client.update_collection_aliases(
            change_aliases_operations=[
                models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=NAME, alias_name="main")),
                models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=NAME, alias_name="old")),
            ]
        )
    for collection in (None, NAME):
        if alias_list(remote, collection) != alias_list(local, collection) or not alias_list(remote, collection):
            fail(f"aliases: {alias_list(remote, collection)} != local mode {alias_list(local, collection)}")
    ours, theirs = both(lambda c: c.query_points("main", query=[0.1] * 8, using="dense", limit=5).points)
    same_points("query through an alias", ours, theirs)
    ours, theirs = both(lambda c: c.scroll("main", limit=5)[0])
    if [p.id for p in ours] != [p.id for p in theirs]:
        fail("scroll through an alias")
    for client in (remote, local):
        client.update_collection_aliases(
            change_aliases_operations=[
                models.RenameAliasOperation(
                    rename_alias=models.RenameAlias(old_alias_name="old", new_alias_name="renamed")
                ),
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="main")),
            ]
        )
    if alias_list(remote) != alias_list(local) or alias_list(remote) != [("renamed", NAME)]:
        fail(f"aliases after rename and delete: {alias_list(remote)} != local mode {alias_list(local)}")
    for refused in (
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="missing", alias_name="x")),
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=NAME, alias_name=NAME)),
        models.RenameAliasOperation(rename_alias=models.RenameAlias(old_alias_name="nope", new_alias_name="y")),
    ):
        for client in (remote, local):
            try:
                client.update_collection_aliases(change_aliases_operations=[
                    models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=NAME, alias_name="z")),
                    refused,
                ])
                fail(f"alias action {refused} was accepted")
            except Exception as error:
                if client is remote and not any(code in str(error) for code in ("400", "404", "409")):
                    fail(f"alias action {refused}: {error}")
    if alias_list(remote) != alias_list(local) or alias_list(remote) != [("renamed", NAME)]:
        fail(f"a refused alias change left something behind: {alias_list(remote)}")
    for client in (remote, local):
        client.update_collection_aliases(
            change_aliases_operations=[models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="renamed"))]
        )
    checks += 6

    # batch_update_points: every payload operation and upsert and delete, in order, compared with local mode.
    fresh = [
        models.PointStruct(id=200 + i, vector={"dense": vector(8), "colbert": [vector(4), vector(4)]},
                           payload={"group": 1, "b": i})
        for i in range(3)
    ]
    operations = [
        models.UpsertOperation(upsert=models.PointsList(points=fresh)),
        models.SetPayloadOperation(set_payload=models.SetPayload(payload={"x": {"y": 1}}, points=[200, 201])),
        models.SetPayloadOperation(set_payload=models.SetPayload(payload={"z": 2}, key="x", points=[201])),
        models.OverwritePayloadOperation(overwrite_payload=models.SetPayload(payload={"only": True}, points=[202])),
        models.DeletePayloadOperation(delete_payload=models.DeletePayload(keys=["b", "x.y"], points=[200, 201])),
        models.ClearPayloadOperation(clear_payload=models.PointIdsList(points=[202])),
        models.DeleteOperation(delete=models.PointIdsList(points=[201])),
    ]
    ours, theirs = both(lambda c: c.batch_update_points(NAME, update_operations=operations, wait=True))
    if len(ours) != len(operations) or any(r.status != models.UpdateStatus.COMPLETED for r in ours):
        fail(f"batch_update_points answered {ours}")
    ours, theirs = both(lambda c: sorted((p.id, json.dumps(p.payload, sort_keys=True)) for p in c.retrieve(NAME, ids=[200, 201, 202])))
    if ours != theirs or len(ours) != 2:
        fail(f"batch_update_points: {ours} != local mode {theirs}")
    # update_vectors, alone and in a batch: the named fields replaced, payloads and other fields kept.
    new_dense, new_tokens = vector(8), [vector(4), vector(4), vector(4)]
    for client in (remote, local):
        client.update_vectors(NAME, points=[models.PointVectors(id=200, vector={"dense": new_dense}),
                                            models.PointVectors(id=202, vector={"colbert": new_tokens})], wait=True)
        client.batch_update_points(NAME, update_operations=[
            models.UpdateVectorsOperation(update_vectors=models.UpdateVectors(
                points=[models.PointVectors(id=200, vector={"colbert": new_tokens})])),
            models.SetPayloadOperation(set_payload=models.SetPayload(payload={"after": 1}, points=[200])),
        ], wait=True)
    ours, theirs = both(lambda c: sorted(c.retrieve(NAME, ids=[200, 202], with_vectors=True), key=lambda p: p.id))
    for a, b in zip(ours, theirs):
        if a.payload != b.payload:
            fail(f"update_vectors: payload of {a.id} {a.payload} != local mode {b.payload}")
        for field in ("dense", "colbert"):
            flat_a = [x for row in a.vector[field] for x in row] if field == "colbert" else a.vector[field]
            flat_b = [x for row in b.vector[field] for x in row] if field == "colbert" else b.vector[field]
            if len(flat_a) != len(flat_b) or any(abs(x - y) > 1e-5 for x, y in zip(flat_a, flat_b)):
                fail(f"update_vectors: {field} of {a.id} differs from local mode")
    probe = [vector(4), vector(4)]
    ours, theirs = both(lambda c: c.query_points(NAME, query=probe, using="colbert", limit=5).points)
    same_points("query after update_vectors", ours, theirs)
    try:
        remote.update_vectors(NAME, points=[models.PointVectors(id=9999, vector={"dense": vector(8)})])
        fail("update_vectors of a missing point was accepted")
    except Exception as error:
        if "404" not in str(error) or "9999" not in str(error):
            fail(f"update_vectors of a missing point: {error}")
    try:
        remote.update_vectors(NAME, points=[models.PointVectors(id=200, vector={"dense": vector(3)})])
        fail("update_vectors with a wrong dimension was accepted")
    except Exception as error:
        if "400" not in str(error):
            fail(f"update_vectors with a wrong dimension: {error}")
    checks += 4
    # delete_vectors (by ids, by filter, in a batch) and points that leave a named vector out: the point reads back
    # without it and is no candidate of searches in it (exact and through the field's index), until update_vectors
    # gives it back.
    only_dense = models.PointStruct(id=203, vector={"dense": vector(8)}, payload={"group": 9})
    stored = [p.id for p in remote.scroll(NAME, limit=100)[0] if p.id < 80][-1]
    for client in (remote, local):
        client.delete_vectors(NAME, vectors=["dense"], points=[200], wait=True)
        client.delete_vectors(NAME, vectors=["colbert"], wait=True, points=models.FilterSelector(filter=models.Filter(
            must=[models.HasIdCondition(has_id=[202])])))
        client.upsert(NAME, points=[only_dense], wait=True)
        client.batch_update_points(NAME, update_operations=[
            models.DeleteVectorsOperation(delete_vectors=models.DeleteVectors(points=[stored], vector=["colbert"]))],
            wait=True)

    def absences(what):
        global checks
        ours, theirs = both(lambda c: sorted(c.retrieve(NAME, ids=[stored, 200, 202, 203], with_vectors=True),
                                             key=lambda p: p.id))
        if [(p.id, sorted(p.vector)) for p in ours] != [(p.id, sorted(p.vector)) for p in theirs]:
            fail(f"{what}: fields {[(p.id, sorted(p.vector)) for p in ours]} != local mode "
                 f"{[(p.id, sorted(p.vector)) for p in theirs]}")
        dense_probe, token_probe = vector(8), [vector(4), vector(4)]
        for query, using in ((dense_probe, "dense"), (token_probe, "colbert")):
            for params in (None, models.SearchParams(exact=True)):
                ours, theirs = both(lambda c: c.query_points(NAME, query=query, using=using, limit=300,
                                                             search_params=params).points)
                same_points(f"{what}: {using} query over every point", ours, theirs)
        rerank = dict(prefetch=models.Prefetch(query=dense_probe, using="dense", limit=300), query=token_probe,
                      using="colbert", limit=300)
        ours, theirs = both(lambda c: c.query_points(NAME, **rerank).points)
        same_points(f"{what}: colbert rescoring dense", ours, theirs)
        ours, theirs = both(lambda c: c.query_points(NAME, query=token_probe, using="colbert", limit=300,
                                                     with_vectors=True).points)
        if sorted((p.id, sorted(p.vector)) for p in ours) != sorted((p.id, sorted(p.vector)) for p in theirs):
            fail(f"{what}: the vectors query results hold differ from local mode's")
        checks += 1

    absences("after delete_vectors")
    try:
        remote.query_points(NAME, query=200, using="dense")
        fail("a query by a point without the field's vector was accepted")
    except Exception as error:
        if "404" not in str(error) and "400" not in str(error):
            fail(f"query by a point without the vector: {error}")
    for client in (remote, local):
        client.update_vectors(NAME, points=[models.PointVectors(id=200, vector={"dense": new_dense})], wait=True)
    absences("after update_vectors gave a vector back")
    for client in (remote, local):
        client.delete(NAME, points_selector=models.PointIdsList(points=[200, 202, 203]), wait=True)
    checks += 3

    # count (and scroll) with full-text matches on a field without a text index: text, text_any, phrase.
    bodies = ["The Quick brown fox, jumps!", "quick_brown", "Café au lait 42", "brown quick", "", "fox", ["a cat", "red fox"]]
    for client in (remote, local):
        for i, body in zip(edited, bodies):
            client.set_payload(NAME, payload={"body": body}, points=[i], wait=True)
    for match in (
        models.MatchText(text="quick fox"), models.MatchText(text="QUICK"), models.MatchText(text="42"),
        models.MatchTextAny(text_any="fox lait"), models.MatchPhrase(phrase="quick brown"),
        models.MatchPhrase(phrase="brown quick"),
    ):
        text_filter = models.Filter(must=[models.FieldCondition(key="body", match=match)])
        ours, theirs = both(lambda c: c.count(NAME, count_filter=text_filter, exact=True).count)
        listed, expected = both(lambda c: sorted(p.id for p in c.scroll(NAME, scroll_filter=text_filter, limit=100)[0]))
        if ours != theirs or listed != expected or not ours:
            fail(f"count with {match}: {ours} {listed} != local mode {theirs} {expected}")
        checks += 1

    # Back to the payloads the queries below expect.
    for client in (remote, local):
        for i in edited + [1]:
            client.overwrite_payload(NAME, payload=points[i].payload, points=[i], wait=True)


def explore_queries():
    """Recommendation, discovery, context, order_by and sample queries, grouped queries, facets and distance
    matrices, on a collection of their own with cosine, Euclid, dot and multivector fields."""
    global checks
    name = "explore"
    for client in (remote, local):
        if client.collection_exists(name):
            client.delete_collection(name)
        client.create_collection(
            name,
            vectors_config={
                "cos": models.VectorParams(size=6, distance=models.Distance.COSINE),
                "far": models.VectorParams(size=4, distance=models.Distance.EUCLID),
                "dot": models.VectorParams(size=5, distance=models.Distance.DOT),
                "colbert": models.VectorParams(
                    size=4,
                    distance=models.Distance.COSINE,
                    multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
                ),
            },
        )
    kinds = ["book", "film", "song", "game"]
    explore_points = []
    for i in range(60):
        payload = {"kind": kinds[i % 4], "n": i % 7, "price": round(rng.uniform(1, 100), 2), "on": i % 5 == 0}
        if i % 3 == 0:
            payload["tags"] = [kinds[(i + 1) % 4], "shared", kinds[(i + 1) % 4]]
        if i % 11 == 0:
            payload["kind"] = 2.5  # a float names no group and has no facet value
        if i % 13 == 0:
            payload["when"] = f"2024-0{1 + i % 9}-1{i % 10}T10:00:00Z"
        explore_points.append(
            models.PointStruct(
                id=i,
                vector={"cos": vector(6), "far": vector(4), "dot": vector(5),
                        "colbert": [vector(4) for _ in range(rng.randint(1, 5))]},
                payload=payload,
            )
        )
    for client in (remote, local):
        client.upsert(name, points=explore_points, wait=True)
    lookup_name = "explore-lookup"
    for client in (remote, local):
        if client.collection_exists(lookup_name):
            client.delete_collection(lookup_name)
        client.create_collection(lookup_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
        client.upsert(lookup_name, points=[models.PointStruct(id=n, vector=[1.0, n], payload={"label": f"n{n}"})
                                           for n in range(0, 7, 2)], wait=True)

    books = models.Filter(must=[models.FieldCondition(key="kind", match=models.MatchValue(value="book"))])
    queries = []
    for using, size in (("cos", 6), ("far", 4), ("dot", 5), ("colbert", None)):
        def example():
            return vector(size) if size else [vector(4) for _ in range(2)]

        for strategy in (models.RecommendStrategy.AVERAGE_VECTOR, models.RecommendStrategy.BEST_SCORE,
                         models.RecommendStrategy.SUM_SCORES):
            queries.append((f"recommend {strategy.value} {using}", dict(
                query=models.RecommendQuery(recommend=models.RecommendInput(
                    positive=[3, example()], negative=[8], strategy=strategy)),
                using=using, limit=6)))
        queries.append((f"recommend best_score negatives only {using}", dict(
            query=models.RecommendQuery(recommend=models.RecommendInput(
                negative=[4, 9], strategy=models.RecommendStrategy.BEST_SCORE)),
            using=using, limit=5)))
        queries.append((f"recommend filtered {using}", dict(
            query=models.RecommendQuery(recommend=models.RecommendInput(positive=[1, 2])),
            using=using, query_filter=books, limit=5, with_payload=True)))
        queries.append((f"discover {using}", dict(
            query=models.DiscoverQuery(discover=models.DiscoverInput(
                target=example(), context=[models.ContextPair(positive=5, negative=6),
                                           models.ContextPair(positive=example(), negative=7)])),
            using=using, limit=6)))
        queries.append((f"context {using}", dict(
            query=models.ContextQuery(context=[models.ContextPair(positive=10, negative=11),
                                               models.ContextPair(positive=12, negative=example())]),
            using=using, limit=6)))
        queries.append((f"recommend rescoring a prefetch {using}", dict(
            prefetch=models.Prefetch(query=example(), using=using, limit=25),
            query=models.RecommendQuery(recommend=models.RecommendInput(
                positive=[20], negative=[21], strategy=models.RecommendStrategy.SUM_SCORES)),
            using=using, limit=5)))
    for what, request in queries:
        if what.startswith("context"):
            # Context scores tie at 0 for every point inside the region, and local mode lists ties in reverse
            # storage order: every point's score is compared instead.
            request = dict(request, limit=100)
            ours, theirs = both(lambda c: {p.id: p.score for p in c.query_points(name, **request).points})
            if ours.keys() != theirs.keys() or any(abs(ours[i] - theirs[i]) > 1e-3 for i in ours):
                fail(f"{what}: {ours} != local mode {theirs}")
            checks += 1
            continue
        ours, theirs = both(lambda c: c.query_points(name, **request).points)
        if "prefetch" in request:
            # Rescoring a prefetch scores only its results: the reference is the same query over those ids.
            prefetched = [p.id for p in local.query_points(
                name, query=request["prefetch"].query, using=request["prefetch"].using, limit=25).points]
            theirs = local.query_points(name, query=request["query"], using=request["using"], limit=request["limit"],
                                        query_filter=models.Filter(must=[models.HasIdCondition(has_id=prefetched)])).points
        same_points(what, ours, theirs, tolerance=1e-3)

    # lookup_from: point ids read from another collection's field (and then not left out of the results).
    side = "explore-side"
    side_points = [models.PointStruct(id=i, vector={"other": vector(6), "tokens": [vector(4), vector(4)]})
                   for i in range(5)]
    for client in (remote, local):
        if client.collection_exists(side):
            client.delete_collection(side)
        client.create_collection(side, vectors_config={
            "other": models.VectorParams(size=6, distance=models.Distance.COSINE),
            "tokens": models.VectorParams(size=4, distance=models.Distance.COSINE, multivector_config=models.MultiVectorConfig(
                comparator=models.MultiVectorComparator.MAX_SIM)),
        })
        client.upsert(side, points=side_points, wait=True)
    for what, request in (
        ("by id", dict(query=3, using="cos", lookup_from=models.LookupLocation(collection=side, vector="other"))),
        ("recommend", dict(query=models.RecommendQuery(recommend=models.RecommendInput(positive=[1, 2], negative=[0])),
                           using="colbert", lookup_from=models.LookupLocation(collection=side, vector="tokens"))),
        ("discover", dict(query=models.DiscoverQuery(discover=models.DiscoverInput(
            target=4, context=[models.ContextPair(positive=1, negative=2)])), using="cos",
            lookup_from=models.LookupLocation(collection=side, vector="other"))),
    ):
        ours, theirs = both(lambda c: c.query_points(name, limit=6, **request).points)
        same_points(f"lookup_from {what}", ours, theirs, tolerance=1e-3)
    try:
        remote.query_points(name, query=42, using="cos", lookup_from=models.LookupLocation(collection=side, vector="other"))
        fail("lookup_from a missing point was accepted")
    except Exception as error:
        if "404" not in str(error) or "42" not in str(error):
            fail(f"lookup_from a missing point: {error}")
    checks += 1
    for client in (remote, local):
        client.delete_collection(side)

    # Maximal marginal relevance on nearest queries: dense (cosine, Euclid), multivector, by point id, with offset.
    for using, query, mmr, offset in (
        ("cos", vector(6), models.Mmr(diversity=0.5, candidates_limit=20), 0),
        ("cos", vector(6), models.Mmr(diversity=0.9), 0),
        ("far", vector(4), models.Mmr(diversity=0.3, candidates_limit=30), 2),
        ("colbert", [vector(4), vector(4)], models.Mmr(diversity=0.6, candidates_limit=25), 0),
        ("dot", 17, models.Mmr(diversity=0.2, candidates_limit=15), 0),
    ):
        ours, theirs = both(lambda c: c.query_points(name, query=models.NearestQuery(nearest=query, mmr=mmr),
                                                     using=using, limit=6, offset=offset).points)
        same_points(f"mmr {using} {mmr}", ours, theirs, tolerance=1e-3)
    # Bodies the client would refuse itself, sent as they are: each is a 400 naming the field.
    for body, word in (({"query": {"nearest": vector(6), "mmr": {"diversity": 2}}, "using": "cos"}, "diversity"),
                       ({"query": {"fusion": "rrf", "mmr": {}}, "prefetch": {"query": vector(6), "using": "cos"}},
                        "one of")):
        request = urllib.request.Request(f"{args.url}/collections/{name}/points/query", method="POST",
                                         data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=30)
            fail(f"{body} was accepted")
        except urllib.error.HTTPError as error:
            text = error.read().decode()
            if error.code != 400 or word not in text:
                fail(f"{body}: {error.code} {text}")
    checks += 1

    # order_by as a query: Qdrant's server scores 0 (local mode reports 1.0), so ids and order values are compared.
    for order in ("n", models.OrderBy(key="price", direction=models.Direction.DESC),
                  models.OrderBy(key="when", direction=models.Direction.ASC)):
        ours, theirs = both(lambda c: c.query_points(name, query=models.OrderByQuery(order_by=order),
                                                     query_filter=None, limit=12).points)
        if [(p.id, p.order_value) for p in ours] != [(p.id, p.order_value) for p in theirs] or not ours:
            fail(f"order_by query {order}: {[(p.id, p.order_value) for p in ours]} != local mode "
                 f"{[(p.id, p.order_value) for p in theirs]}")
        if any(p.score != 0 for p in ours):
            fail("order_by query: scores are not 0")
        checks += 1
    # order_by over a prefetch: the prefetch's results ordered.
    ordered_prefetch = dict(prefetch=models.Prefetch(query=vector(6), using="cos", limit=15),
                            query=models.OrderByQuery(order_by="price"), limit=8)
    ours, theirs = both(lambda c: c.query_points(name, **ordered_prefetch).points)
    if [(p.id, p.order_value) for p in ours] != [(p.id, p.order_value) for p in theirs]:
        fail(f"order_by over a prefetch: {[p.id for p in ours]} != local mode {[p.id for p in theirs]}")
    checks += 1
    # sample: random points passing the filter; all of them when the limit covers them.
    ours, theirs = both(lambda c: sorted(p.id for p in c.query_points(
        name, query=models.SampleQuery(sample=models.Sample.RANDOM), query_filter=books, limit=100).points))
    if ours != theirs or not ours:
        fail(f"sample: {ours} != local mode {theirs}")
    few = remote.query_points(name, query=models.SampleQuery(sample=models.Sample.RANDOM), limit=4).points
    if len(few) != 4 or len({p.id for p in few}) != 4:
        fail(f"sample of 4: {few}")
    checks += 1
    try:
        remote.query_points(name, query=models.FormulaQuery(formula="$score"), prefetch=models.Prefetch(
            query=vector(6), using="cos"))
        fail("a formula query was accepted")
    except Exception as error:
        if "400" not in str(error) or "formula" not in str(error):
            fail(f"formula query: {error}")
    checks += 1

    # Grouped queries: by a string key (floats join no group), an array key, an integer key; with lookups.
    group_requests = [
        dict(query=vector(6), using="cos", group_by="kind", group_size=2, limit=3, with_payload=True),
        dict(query=[vector(4), vector(4)], using="colbert", group_by="tags", group_size=3, limit=10),
        dict(query=vector(4), using="far", group_by="n", group_size=2, limit=4, with_payload=["price"],
             with_lookup=models.WithLookup(collection=lookup_name, with_payload=True)),
        dict(prefetch=[models.Prefetch(query=vector(6), using="cos", limit=20),
                       models.Prefetch(query=vector(5), using="dot", limit=20)],
             query=models.FusionQuery(fusion=models.Fusion.RRF), group_by="kind", group_size=4, limit=2,
             query_filter=models.Filter(must_not=[models.FieldCondition(key="on", match=models.MatchValue(value=True))])),
        dict(query=models.RecommendQuery(recommend=models.RecommendInput(positive=[7])), using="dot",
             group_by="n", limit=3, with_lookup=lookup_name),
    ]
    for request in group_requests:
        ours, theirs = both(lambda c: c.query_points_groups(name, **request).groups)
        if [g.id for g in ours] != [g.id for g in theirs] or not ours:
            fail(f"groups {request}: {[g.id for g in ours]} != local mode {[g.id for g in theirs]}")
        for a, b in zip(ours, theirs):
            same_points(f"group {a.id}", a.hits, b.hits, tolerance=1e-3)
            mine = (a.lookup.id, a.lookup.payload) if a.lookup else None
            reference = (b.lookup.id, b.lookup.payload) if b.lookup else None
            if mine != reference:
                fail(f"group {a.id} lookup {mine} != local mode {reference}")

    # Facets: counts by value, most frequent first, a filter, a limit, arrays counted once per point.
    for key, facet_filter, limit in (("kind", None, 10), ("tags", None, 2), ("n", books, 10), ("on", None, 10)):
        ours, theirs = both(lambda c: [(h.value, h.count) for h in c.facet(
            name, key=key, facet_filter=facet_filter, limit=limit).hits])
        if ours != theirs or not ours:
            fail(f"facet {key}: {ours} != local mode {theirs}")
        checks += 1

    # Distance matrices: a sample covering every filtered point is not random, so it compares exactly.
    for using in ("cos", "far", "colbert"):
        ours, theirs = both(lambda c: c.search_matrix_pairs(name, query_filter=books, sample=100, limit=3,
                                                            using=using).pairs)
        if [(p.a, p.b) for p in ours] != [(p.a, p.b) for p in theirs] or not ours:
            fail(f"matrix pairs {using}: {[(p.a, p.b) for p in ours]} != local mode {[(p.a, p.b) for p in theirs]}")
        if any(abs(p.score - q.score) > 1e-3 * max(1, abs(q.score)) for p, q in zip(ours, theirs)):
            fail(f"matrix pairs {using}: scores differ")
        ours, theirs = both(lambda c: c.search_matrix_offsets(name, query_filter=books, sample=100, limit=2,
                                                              using=using))
        if (ours.ids, ours.offsets_row, ours.offsets_col) != (theirs.ids, theirs.offsets_row, theirs.offsets_col):
            fail(f"matrix offsets {using}: {ours} != local mode {theirs}")
        checks += 2
    sampled = remote.search_matrix_offsets(name, sample=5, limit=2, using="cos")
    if len(sampled.ids) != 5 or len(sampled.scores) != 10:
        fail(f"a sampled matrix: {sampled}")
    checks += 1
    for client in (remote, local):
        client.delete_collection(name)
        client.delete_collection(lookup_name)



def sparse_queries():
    """Sparse fields (plain and with the IDF modifier) next to a dense one: upserts with and without the sparse
    vector, retrieval, sparse queries at a leaf, rescoring a dense prefetch, fused with a dense list, filtered,
    after deletes; collection info; refusals."""
    global checks
    name = "sparse"
    fresh_collection(name, vectors_config={"dense": models.VectorParams(size=4, distance=models.Distance.COSINE)},
                     sparse_vectors_config={"plain": models.SparseVectorParams(),
                                            "bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)})
    info = remote.get_collection(name).config.params
    if set(info.sparse_vectors) != {"plain", "bm25"} or info.sparse_vectors["bm25"].modifier != models.Modifier.IDF:
        fail(f"sparse collection info: {info.sparse_vectors}")
    if set(info.vectors) != {"dense"}:
        fail(f"sparse collection info lists {set(info.vectors)} as dense vectors")

    def sparse_vector():
        indices = rng.sample(range(0, 40), rng.randint(1, 6)) + ([4_000_000_000] if rng.random() < 0.2 else [])
        return models.SparseVector(indices=indices, values=[round(rng.uniform(0.1, 2), 3) for _ in indices])

    sparse_points = []
    for i in range(40):
        vectors = {"dense": vector(4), "bm25": sparse_vector()}
        if i % 5 != 0:  # every fifth point has no "plain" vector
            vectors["plain"] = sparse_vector()
        sparse_points.append(models.PointStruct(id=i, vector=vectors, payload={"even": i % 2 == 0}))
    for client in (remote, local):
        client.upsert(name, points=sparse_points, wait=True)
    ours, theirs = both(lambda c: sorted(c.retrieve(name, ids=[0, 3, 7], with_vectors=True), key=lambda p: p.id))
    for a, b in zip(ours, theirs):
        if set(a.vector) != set(b.vector):
            fail(f"sparse retrieve {a.id}: fields {set(a.vector)} != local mode {set(b.vector)}")
        for field in ("plain", "bm25"):
            if field in a.vector and (a.vector[field].indices != b.vector[field].indices or any(
                    abs(x - y) > 1e-5 for x, y in zip(a.vector[field].values, b.vector[field].values))):
                fail(f"sparse retrieve {a.id}.{field}: {a.vector[field]} != local mode {b.vector[field]}")
    checks += 1
    evens = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])
    for round_ in range(2):
        for field in ("plain", "bm25"):
            query = sparse_vector()
            ours, theirs = both(lambda c: c.query_points(name, query=query, using=field, limit=8).points)
            same_points(f"sparse {field} {round_}", ours, theirs, tolerance=1e-4)
            ours, theirs = both(lambda c: c.query_points(name, query=query, using=field, limit=5,
                                                         query_filter=evens).points)
            same_points(f"sparse {field} filtered {round_}", ours, theirs, tolerance=1e-4)
            rerank = dict(prefetch=models.Prefetch(query=vector(4), using="dense", limit=20), query=query, using=field,
                          limit=5)
            ours, theirs = both(lambda c: c.query_points(name, **rerank).points)
            same_points(f"sparse {field} rescoring dense {round_}", ours, theirs, tolerance=1e-4)
            fused = dict(prefetch=[models.Prefetch(query=query, using=field, limit=15),
                                   models.Prefetch(query=vector(4), using="dense", limit=15)],
                         query=models.FusionQuery(fusion=models.Fusion.RRF), limit=10)
            ours, theirs = both(lambda c: c.query_points(name, **fused).points)
            same_points(f"sparse {field} fused with dense {round_}", ours, theirs, tolerance=1e-4)
            ours, theirs = both(lambda c: c.query_points(name, query=7, using=field, limit=5).points)
            same_points(f"sparse {field} by id {round_}", ours, theirs, tolerance=1e-4)
            # IDF over a corpus filter (the node's own `params`), and the collection-wide default spelt out with
            # search params that change nothing here.
            corpus = models.SearchParams(idf=models.IdfCorpusParams(corpus=evens))
            ours, theirs = both(lambda c: c.query_points(name, query=query, using=field, limit=8,
                                                         search_params=corpus).points)
            same_points(f"sparse {field} idf corpus {round_}", ours, theirs, tolerance=1e-4)
            fused = dict(prefetch=[models.Prefetch(query=query, using=field, limit=15, params=corpus),
                                   models.Prefetch(query=vector(4), using="dense", limit=15)],
                         query=models.FusionQuery(fusion=models.Fusion.RRF), limit=10)
            ours, theirs = both(lambda c: c.query_points(name, **fused).points)
            same_points(f"sparse {field} idf corpus in a prefetch {round_}", ours, theirs, tolerance=1e-4)
            # Examples in a sparse field: point ids (holding a vector there) and sparse vectors, each strategy,
            # discovery and context.
            given = sparse_vector()
            for strategy in (models.RecommendStrategy.AVERAGE_VECTOR, models.RecommendStrategy.BEST_SCORE,
                             models.RecommendStrategy.SUM_SCORES):
                for positive, negative in (([7, given], [12]), ([7], []), ([given, 6], [13, 16])):
                    recommend = models.RecommendQuery(recommend=models.RecommendInput(
                        positive=positive, negative=negative, strategy=strategy))
                    ours = remote.query_points(name, query=recommend, using=field, limit=6).points
                    wide = local.query_points(name, query=recommend, using=field, limit=60).points
                    same_top(f"sparse {field} recommend {strategy} {round_}", ours, wide, 6)
            recommend = models.RecommendQuery(recommend=models.RecommendInput(positive=[7, given], negative=[6]))
            ours = remote.query_points(name, query=recommend, using=field, limit=6, search_params=corpus,
                                       query_filter=evens).points
            wide = local.query_points(name, query=recommend, using=field, limit=60, search_params=corpus,
                                      query_filter=evens).points
            same_top(f"sparse {field} recommend with an idf corpus {round_}", ours, wide, 6)
            discover = models.DiscoverQuery(discover=models.DiscoverInput(
                target=given, context=[models.ContextPair(positive=7, negative=6),
                                       models.ContextPair(positive=sparse_vector(), negative=12)]))
            ours = remote.query_points(name, query=discover, using=field, limit=6).points
            wide = local.query_points(name, query=discover, using=field, limit=60).points
            same_top(f"sparse {field} discover {round_}", ours, wide, 6)
            context = models.ContextQuery(context=[models.ContextPair(positive=14, negative=given),
                                                   models.ContextPair(positive=7, negative=12)])
            ours = remote.query_points(name, query=context, using=field, limit=6).points
            wide = local.query_points(name, query=context, using=field, limit=60).points
            same_top(f"sparse {field} context {round_}", ours, wide, 6)
            spelt = models.SearchParams(idf=models.IdfScope.GLOBAL, indexed_only=True,
                                        quantization=models.QuantizationSearchParams(rescore=True, oversampling=2))
            ours, theirs = both(lambda c: c.query_points(name, query=query, using=field, limit=8,
                                                         search_params=spelt).points)
            same_points(f"sparse {field} idf global {round_}", ours, theirs, tolerance=1e-4)
        # The second round after deletes (and an update of a sparse vector): IDF follows the live points.
        for client in (remote, local):
            client.delete(name, points_selector=models.PointIdsList(points=[1, 2, 3, 11]), wait=True)
            client.update_vectors(name, points=[models.PointVectors(id=8, vector={"bm25": sparse_points[9].vector["bm25"]})],
                                  wait=True)
    for bad in ({"plain": models.SparseVector(indices=[1, 1], values=[1, 2])},
                {"dense": vector(4), "plain": models.SparseVector(indices=[1, 2], values=[1])}):
        try:
            remote.upsert(name, points=[models.PointStruct(id=99, vector=bad)], wait=True)
            fail(f"a bad sparse vector was accepted: {bad}")
        except Exception as error:
            if "400" not in str(error):
                fail(f"bad sparse vector: {error}")
    try:
        remote.query_points(name, query=vector(4), using="plain")
        fail("a dense query on a sparse field was accepted")
    except Exception as error:
        if "400" not in str(error):
            fail(f"dense query on a sparse field: {error}")
    checks += 2
    for client in (remote, local):
        client.delete_collection(name)


def text_queries():
    """Payload indexes (created, listed in collection info, replaced, deleted) and Qdrant's text query: BM25 over a
    text index with scoring, plain and with k and b, filtered, rescoring a dense prefetch, fused with a dense list,
    after deletes and payload edits; refusals."""
    global checks
    name = "texts"
    for client in (remote, local):
        if client.collection_exists(name):
            client.delete_collection(name)
        client.create_collection(name, vectors_config={"dense": models.VectorParams(size=4, distance=models.Distance.DOT)})
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()

    def sentence():
        return " ".join(rng.choice(words[: rng.randint(3, len(words))]) for _ in range(rng.randint(1, 14)))

    text_points = []
    for i in range(60):
        body = [sentence(), sentence().upper()] if i % 7 == 0 else (None if i % 11 == 0 else sentence() + ", Zeta!")
        payload = {"body": body, "tag": ["a", "b", "c"][i % 3]}
        if i % 13 == 0:
            payload["body"] = i  # not text: no words
        text_points.append(models.PointStruct(id=i, vector={"dense": vector(4)}, payload=payload))
    scored = models.TextIndexParams(type=models.TextIndexType.TEXT, tokenizer=models.TokenizerType.WORD,
                                    lowercase=True, scoring=models.TextScoringParams(type=models.TextScoringType.BM25))
    for client in (remote, local):
        client.upsert(name, points=text_points, wait=True)
        client.create_payload_index(name, "body", field_schema=scored, wait=True)
        client.create_payload_index(name, "tag", field_schema=models.PayloadSchemaType.KEYWORD, wait=True)
    schema = remote.get_collection(name).payload_schema
    if schema["body"].data_type != models.PayloadSchemaType.TEXT or schema["tag"].data_type != "keyword" \
            or schema["tag"].points != 60:
        fail(f"payload_schema: {schema}")
    checks += 1
    tag_a = models.Filter(must=[models.FieldCondition(key="tag", match=models.MatchValue(value="a"))])
    for round_ in range(2):
        for text in ("alpha", "beta gamma beta", "ZETA theta", "mu nothing", "unknown"):
            for query in (models.TextQuery(text=text),
                          models.TextQuery(text=models.TextQueryInput(
                              query=text, scoring=models.Bm25Scoring(bm25=models.Bm25Params(k=0.9, b=0.3))))):
                ours, theirs = both(lambda c: c.query_points(name, query=query, using="body", limit=10).points)
                same_points(f"text query {text!r} {round_}", ours, theirs)
                ours, theirs = both(lambda c: c.query_points(name, query=query, using="body", limit=5,
                                                             query_filter=tag_a, with_payload=True).points)
                same_points(f"text query {text!r} filtered {round_}", ours, theirs)
            query = models.TextQuery(text=text)
            rerank = dict(prefetch=models.Prefetch(query=vector(4), using="dense", limit=25), query=query,
                          using="body", limit=6)
            ours, theirs = both(lambda c: c.query_points(name, **rerank).points)
            same_points(f"text query {text!r} rescoring dense {round_}", ours, theirs)
            fused = dict(prefetch=[models.Prefetch(query=query, using="body", limit=15),
                                   models.Prefetch(query=vector(4), using="dense", limit=15)],
                         query=models.FusionQuery(fusion=models.Fusion.RRF), limit=10)
            ours, theirs = both(lambda c: c.query_points(name, **fused).points)
            same_points(f"text query {text!r} fused with dense {round_}", ours, theirs)
        # The second round after deletes and payload edits: the statistics follow the live points.
        added = models.PointStruct(id=70, vector={"dense": vector(4)}, payload={"body": "gamma zeta"})
        for client in (remote, local):
            client.delete(name, points_selector=models.PointIdsList(points=[1, 2, 3, 14]), wait=True)
            client.set_payload(name, payload={"body": "alpha alpha alpha beta"}, points=[5, 6], wait=True)
            client.upsert(name, points=[added], wait=True)
    # Replacing the text index by a keyword index, then deleting it: text queries are refused.
    for client in (remote, local):
        client.create_payload_index(name, "body", field_schema=models.PayloadSchemaType.KEYWORD, wait=True)
    for replaced in (True, False):
        try:
            remote.query_points(name, query=models.TextQuery(text="alpha"), using="body")
            fail("a text query without a text index with scoring was accepted")
        except Exception as error:
            if "400" not in str(error) or "body" not in str(error):
                fail(f"text query without an index: {error}")
        if replaced:
            for client in (remote, local):
                client.delete_payload_index(name, "body", wait=True)
    if "body" in remote.get_collection(name).payload_schema:
        fail("delete_payload_index left the index in payload_schema")
    bad_text_indexes = [
        models.TextIndexParams(type=models.TextIndexType.TEXT, tokenizer=models.TokenizerType.PREFIX),
        models.TextIndexParams(type=models.TextIndexType.TEXT, min_token_len=2),
        models.TextIndexParams(type=models.TextIndexType.TEXT, lowercase=False),
    ]
    for bad in bad_text_indexes:
        try:
            remote.create_payload_index(name, "body", field_schema=bad, wait=True)
            fail(f"an unsupported text index was accepted: {bad}")
        except Exception as error:
            if "400" not in str(error) or "body" not in str(error):
                fail(f"unsupported text index: {error}")
    checks += 3
    # Documents for inference with a model Tessera does not run (`models.Document`, as `cloud_inference` sends
    # them): refused naming `model`, nothing written.
    document = {"text": "alpha beta", "model": "sentence-transformers/all-MiniLM-L6-v2"}
    for path, body in (("points/query", {"query": document, "using": "dense"}),
                       ("points?wait=true", {"points": [{"id": 500, "vector": {"dense": document}}]})):
        request = urllib.request.Request(f"{args.url}/collections/{name}/{path}", method="PUT" if "wait" in path
                                         else "POST", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=30)
            fail(f"a document with a model was accepted at {path}")
        except urllib.error.HTTPError as error:
            text = error.read().decode()
            if error.code != 400 or "model" not in text:
                fail(f"document with a model at {path}: {error.code} {text}")
    if remote.retrieve(name, ids=[500]):
        fail("a refused document upsert wrote its point")
    checks += 1
    for client in (remote, local):
        client.delete_collection(name)


def bm25_inference():
    """Qdrant's built-in BM25 model: documents `models.Document(text, model="qdrant/bm25")` sent by a client with
    `cloud_inference=True` are turned into sparse vectors by the server (upsert, update_vectors, queries at a leaf,
    in prefetches and fusions, with options). Local mode runs no such model, so it gets the sparse vectors a
    reference statement of the model computes here (Qdrant's tokenizer, English stop words, the Snowball stemmer of
    `py-rust-stemmers`, MurmurHash3 of `mmh3`): the stored vectors and every answer must be the same."""
    global checks
    import math
    import re

    import mmh3
    import py_rust_stemmers

    stemmer = py_rust_stemmers.SnowballStemmer("english")
    stopwords = set("""i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
        yourselves he him his himself she she's her hers herself it it's its itself they them their theirs themselves
        what which who whom this that that'll these those am is are was were be been being have has had having do does
        did doing a an the and but if or because as until while of at by for with about against between into through
        during before after above below to from up down in out on off over under again further then once here there
        when where why how all any both each few more most other some such no nor not only own same so than too very s
        t can will just don don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't
        doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't
        shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't""".split())

    def tokens(text):
        words = [w.lower() for w in re.split(r"[^\w]|_", text) if w]
        return [stemmer.stem_word(w) for w in words if w not in stopwords]

    def document_vector(text, k=1.2, b=0.75, avg_len=256.0):
        found = tokens(text)
        counts = {}
        for token in found:
            counts[token] = counts.get(token, 0) + 1
        entries = {}
        for token, count in counts.items():
            entries[abs(mmh3.hash(token))] = count * (k + 1) / (count + k * (1 - b + b * len(found) / avg_len))
        indices = sorted(entries)
        return models.SparseVector(indices=indices, values=[entries[i] for i in indices])

    def query_vector(text):
        indices = sorted({abs(mmh3.hash(token)) for token in tokens(text)})
        return models.SparseVector(indices=indices, values=[1.0] * len(indices))

    inferring = QdrantClient(url=args.url, prefer_grpc=False, timeout=30, cloud_inference=True)
    name = "inferred"
    fresh_collection(name, vectors_config={"dense": models.VectorParams(size=4, distance=models.Distance.COSINE)},
                     sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF),
                                            "tuned": models.SparseVectorParams(modifier=models.Modifier.IDF)})
    vocabulary = ("cats running cat ran connections connected connecting studies studying generously general "
                  "generation Über naïve café 42 x7 happily happiness relational Running sky skies dying agreed "
                  "feed hopping hoped").split()
    stop = "The and the to of a is THE are s".split()
    tuned = {"k": 1.5, "b": 0.5, "avg_len": 12}

    def text(i):
        # Point i has i + 1 tokens (stop words come on top, and a possessive's s is one), so no two documents
        # score alike: Qdrant leaves the order of ties open, and fusions would pass it on.
        words = [rng.choice(vocabulary) for _ in range(i + 1)] + [rng.choice(stop) for _ in range(rng.randint(0, 4))]
        rng.shuffle(words)
        return " ".join(words) + rng.choice(["", ".", "!", "?", "'s"])

    texts = {i: text(i) for i in range(50)}
    texts[3] = "The, and of!"  # stop words only: an empty vector, which counts in the IDF modifier's N
    remote_points, local_points = [], []
    for i, body in texts.items():
        dense = vector(4)
        remote_points.append(models.PointStruct(id=i, payload={"body": body, "even": i % 2 == 0}, vector={
            "dense": dense, "bm25": models.Document(text=body, model="qdrant/bm25"),
            "tuned": models.Document(text=body, model="qdrant/bm25", options=tuned)}))
        local_points.append(models.PointStruct(id=i, payload={"body": body, "even": i % 2 == 0}, vector={
            "dense": dense, "bm25": document_vector(body), "tuned": document_vector(body, **tuned)}))
    inferring.upsert(name, points=remote_points, wait=True)
    local.upsert(name, points=local_points, wait=True)
    ours, theirs = both(lambda c: sorted(c.retrieve(name, ids=list(texts), with_vectors=["bm25", "tuned"]),
                                         key=lambda p: p.id))
    for a, b in zip(ours, theirs):
        for field in ("bm25", "tuned"):
            mine, reference = a.vector.get(field), b.vector.get(field)
            if (mine is None) != (reference is None) or mine is not None and (
                    mine.indices != reference.indices
                    or any(abs(x - y) > 1e-6 * max(1, abs(y)) for x, y in zip(mine.values, reference.values))):
                fail(f"qdrant/bm25 document {a.id} ({texts[a.id]!r}) {field}: {mine} != reference {reference}")
    checks += 1
    evens = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])
    for round_ in range(2):
        for words in ("cat running", "The connection of generations", "skies and happiness", "café Über 42",
                      "the of", "zebra"):
            document = models.Document(text=words, model="qdrant/bm25")
            reference = query_vector(words)
            for field in ("bm25", "tuned"):
                ours = inferring.query_points(name, query=document, using=field, limit=10).points
                theirs = local.query_points(name, query=reference, using=field, limit=10).points
                same_points(f"qdrant/bm25 query {words!r} on {field} {round_}", ours, theirs)
            ours = inferring.query_points(name, query=document, using="bm25", limit=5, query_filter=evens).points
            theirs = local.query_points(name, query=reference, using="bm25", limit=5, query_filter=evens).points
            same_points(f"qdrant/bm25 query {words!r} filtered {round_}", ours, theirs)
            dense = vector(4)
            ours = inferring.query_points(name, limit=8, query=models.FusionQuery(fusion=models.Fusion.RRF), prefetch=[
                models.Prefetch(query=document, using="bm25", limit=15),
                models.Prefetch(query=dense, using="dense", limit=15)]).points
            theirs = local.query_points(name, limit=8, query=models.FusionQuery(fusion=models.Fusion.RRF), prefetch=[
                models.Prefetch(query=reference, using="bm25", limit=15),
                models.Prefetch(query=dense, using="dense", limit=15)]).points
            same_points(f"qdrant/bm25 query {words!r} fused with dense {round_}", ours, theirs)
        # The second round after update_vectors with documents and deletes: IDF follows the live points.
        changed = {5: "cats cats cats running", 8: "generously studying the skies"}
        inferring.update_vectors(name, wait=True, points=[
            models.PointVectors(id=i, vector={"bm25": models.Document(text=body, model="qdrant/bm25")})
            for i, body in changed.items()])
        local.update_vectors(name, wait=True, points=[
            models.PointVectors(id=i, vector={"bm25": document_vector(body)}) for i, body in changed.items()])
        for client in (remote, local):
            client.delete(name, points_selector=models.PointIdsList(points=[1, 2, 9]), wait=True)
    # A model Tessera does not run and a bad option are refused naming them; nothing is written.
    for document, named in ((models.Document(text="cats", model="Qdrant/bm25"), "model"),
                            (models.Document(text="cats", model="qdrant/bm25", options={"ascii_folding": True}),
                             "ascii_folding"),
                            (models.Document(text="cats", model="qdrant/bm25", options={"language": "french"}),
                             "language")):
        try:
            inferring.upsert(name, points=[models.PointStruct(id=900, vector={"dense": vector(4), "bm25": document})],
                             wait=True)
            fail(f"a document with {named} {document} was accepted")
        except Exception as error:
            if "400" not in str(error) or named not in str(error):
                fail(f"document with {named}: {error}")
        try:
            inferring.query_points(name, query=document, using="bm25")
            fail(f"a query document with {named} {document} was accepted")
        except Exception as error:
            if "400" not in str(error) or named not in str(error):
                fail(f"query document with {named}: {error}")
    if remote.retrieve(name, ids=[900]):
        fail("a refused document upsert wrote its point")
    checks += 1
    for client in (remote, local):
        client.delete_collection(name)


if not args.older_client:
    newest_only()
    explore_queries()
    sparse_queries()
    text_queries()
    bm25_inference()

# Snapshots (a server feature: local mode has none, so the server's own collection is the reference). A snapshot is
# taken while a thread upserts, listed, downloaded, recovered into new names from its file:// and http:// locations
# and from an upload while the server runs, compared point by point with the source as of the snapshot, then
# deleted.
def snapshots():
    global checks
    source, copy, fetched, uploaded = "snap-src", "snap-copy", "snap-http", "snap-up"
    for name in (source, copy, fetched, uploaded):
        if remote.collection_exists(name):
            remote.delete_collection(name)
    remote.create_collection(
        source,
        vectors_config={
            "dense": models.VectorParams(size=8, distance=models.Distance.DOT),
            "colbert": models.VectorParams(
                size=4,
                distance=models.Distance.DOT,
                multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
            ),
        },
    )
    generator = random.Random(11)

    def batch_points(first, count):
        return [
            models.PointStruct(
                id=first + i,
                vector={
                    "dense": [generator.uniform(-1, 1) for _ in range(8)],
                    "colbert": [[generator.uniform(-1, 1) for _ in range(4)] for _ in range(1 + (first + i) % 4)],
                },
                payload={"n": first + i, "tag": f"t{(first + i) % 5}", "nested": {"k": [first + i, "x"]}},
            )
            for i in range(count)
        ]

    remote.upsert(source, points=batch_points(0, 200), wait=True)
    batch = 10
    acknowledged = [0]  # batches of `batch` points from id 1000 on, acknowledged so far
    stop = threading.Event()
    errors = []

    def writer():
        writes = QdrantClient(url=args.url, prefer_grpc=False, timeout=30, check_compatibility=False)
        k = 0
        while not stop.is_set() and k < 500:
            try:
                writes.upsert(source, points=batch_points(1000 + k * batch, batch), wait=True)
            except Exception as error:  # reported below
                errors.append(error)
                return
            k += 1
            acknowledged[0] = k

    thread = threading.Thread(target=writer)
    thread.start()
    while acknowledged[0] < 3 and thread.is_alive():
        pass
    before = acknowledged[0]
    description = remote.create_snapshot(source, wait=True)
    after = acknowledged[0]
    stop.set()
    thread.join()
    if errors:
        fail(f"snapshots: an upsert during the snapshot failed: {errors[0]}")
    if not description.name.startswith(f"{source}-") or not description.name.endswith(".snapshot"):
        fail(f"snapshots: name {description.name}")
    listed = remote.list_snapshots(source)
    if [(s.name, s.size, s.checksum) for s in listed] != [(description.name, description.size, description.checksum)]:
        fail(f"snapshots: listed {listed} != created {description}")
    checks += 1
    with urllib.request.urlopen(f"{args.url}/collections/{source}/snapshots/{description.name}") as answer:
        archive = answer.read()
    if len(archive) != description.size or hashlib.sha256(archive).hexdigest() != description.checksum:
        fail("snapshots: the download differs from the size and checksum reported")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = tar.getnames()
    if members[0] != "collection.sqlite" or members[-1] != "tessera-snapshot.json":
        fail(f"snapshots: archive members {members}")
    checks += 1

    # Recovered while the server runs, from the file and over http (the server's own download route).
    location = f"file://{args.data}/.snapshots/{source}/{description.name}"
    if remote.recover_snapshot(copy, location=location, checksum=description.checksum, wait=True) is not True:
        fail("snapshots: recover_snapshot did not answer true")
    remote.recover_snapshot(
        fetched,
        location=f"{args.url}/collections/{source}/snapshots/{description.name}",
        priority=models.SnapshotPriority.SNAPSHOT,
        wait=True,
    )
    body = (
        b"--tessera-boundary\r\nContent-Disposition: form-data; name=\"snapshot\"; filename=\"up.snapshot\"\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + archive + b"\r\n--tessera-boundary--\r\n"
    )
    upload = urllib.request.Request(
        f"{args.url}/collections/{uploaded}/snapshots/upload?checksum={description.checksum}",
        data=body,
        method="POST",
        headers={"Content-Type": "multipart/form-data; boundary=tessera-boundary"},
    )
    with urllib.request.urlopen(upload) as answer:
        if json.loads(answer.read())["result"] is not True:
            fail("snapshots: upload did not answer true")

    def everything(name):
        found, offset = [], None
        while True:
            page, offset = remote.scroll(name, limit=256, offset=offset, with_payload=True, with_vectors=True)
            found += page
            if offset is None:
                return found

    for name in (copy, fetched, uploaded):
        restored = everything(name)
        ids = [p.id for p in restored]
        held = (len(ids) - 200) // batch
        # Whole batches in commit order: every point acknowledged before the snapshot began, none that was not
        # acknowledged by the time it returned (but the one write in flight).
        if ids != list(range(200)) + list(range(1000, 1000 + held * batch)) or not before <= held <= after + 1:
            fail(f"snapshots: {name} holds {len(ids)} points; {before} <= batches <= {after + 1} expected")
        reference = {p.id: p for p in remote.retrieve(source, ids=ids, with_payload=True, with_vectors=True)}
        for point in restored:
            expected = reference[point.id]
            if point.payload != expected.payload:
                fail(f"snapshots: payload of {point.id} in {name}: {point.payload} != {expected.payload}")
            for field in ("dense", "colbert"):
                mine, theirs = point.vector[field], expected.vector[field]
                flat_mine = [x for row in mine for x in row] if field == "colbert" else mine
                flat_theirs = [x for row in theirs for x in row] if field == "colbert" else theirs
                if len(flat_mine) != len(flat_theirs) or any(a != b for a, b in zip(flat_mine, flat_theirs)):
                    fail(f"snapshots: vector {field} of {point.id} in {name} differs")
        checks += 1

    # Recovering over an existing collection replaces it.
    remote.upsert(copy, points=batch_points(90000, 3), wait=True)
    remote.recover_snapshot(copy, location=location, wait=True)
    if remote.count(copy, exact=True).count != 200 + held * batch:
        fail("snapshots: recovering over a collection did not replace it")
    checks += 1

    # Refusals: a checksum mismatch, an unreachable location, a file outside the snapshots folder, unknown names.
    refusals = [
        (lambda: remote.recover_snapshot(copy, location=location, checksum="0" * 64), "400", "Checksum mismatch"),
        (lambda: remote.recover_snapshot(copy, location="http://127.0.0.1:9/none.snapshot"), "400", "cannot download"),
        (lambda: remote.recover_snapshot(copy, location="file:///etc/passwd"), "400", "snapshots folder"),
        (lambda: remote.delete_snapshot(source, "none.snapshot"), "404", "not found"),
        (lambda: remote.list_snapshots("missing"), "404", "Collection `missing`"),
    ]
    for call, status, words in refusals:
        try:
            call()
            fail(f"snapshots: a refusal ({words}) was accepted")
        except Exception as error:
            if status not in str(error) or words not in str(error):
                fail(f"snapshots: expected {status} with '{words}', got {error}")
        checks += 1
    if remote.count(copy, exact=True).count != 200 + held * batch:
        fail("snapshots: a refused recovery changed the collection")

    if remote.delete_snapshot(source, description.name, wait=True) is not True:
        fail("snapshots: delete_snapshot did not answer true")
    if remote.list_snapshots(source):
        fail("snapshots: a deleted snapshot is still listed")
    for name in (source, copy, fetched, uploaded):
        for snapshot in remote.list_snapshots(name):
            remote.delete_snapshot(name, snapshot.name)
        remote.delete_collection(name)
    checks += 1


snapshots()

# Every query again, through Tessera's own pipeline outside the server (`tessera query`), after the edits.
for kind, request in queries:
    body = {
        "prefetch": {"query": request["prefetch"].query, "using": "dense", "limit": 20},
        "query": request["query"],
        "using": "colbert",
        "filter": {"must": [{"key": "group", "match": {"value": 1}}]},
        "limit": 5,
    }
    served = remote.query_points(NAME, **request).points
    output = subprocess.run(
        [args.tessera, "query", NAME, "--data", args.data],
        input=json.dumps(body).encode(),
        capture_output=True,
        check=True,
    )
    direct = json.loads(output.stdout)["points"]
    if [p.id for p in served] != [p["id"] for p in direct]:
        fail(f"server {[p.id for p in served]} != tessera query {[p['id'] for p in direct]}")
    if any(abs(p.score - d["score"]) > 1e-6 for p, d in zip(served, direct)):
        fail("server scores differ from tessera query")
    checks += 1

# Errors reach the client as Qdrant's.
try:
    remote.query_points(NAME, query=vector(5), using="dense")
    fail("a wrong dimension was accepted")
except Exception as error:  # qdrant_client raises UnexpectedResponse with the status
    if "400" not in str(error):
        fail(f"wrong dimension: {error}")
try:
    remote.query_points("missing", query=vector(8), using="dense")
    fail("an unknown collection was accepted")
except Exception as error:
    if "404" not in str(error):
        fail(f"unknown collection: {error}")
checks += 2

remote.delete_collection(NAME)
if remote.collection_exists(NAME):
    fail("delete_collection")
print(f"compat: qdrant-client against tessera serve: {checks} checks passed, all equal to local mode and tessera query")
