package presence

// library is the Redis Functions library behind the Redis store, loaded
// with FUNCTION LOAD REPLACE on every master. Each function takes one
// channel's three keys, which share a hash tag (one slot on a cluster):
//
//	KEYS[1] zset  client → expiry (ms, Redis server clock)
//	KEYS[2] hash  client → "<len(user)>:<user><info>"
//	KEYS[3] hash  user   → number of the channel's clients with that user
//
// Redis 7.0 has no per-field TTL (HEXPIRE is 7.4), so the zset carries the
// expiries and every call first sweeps what has expired, removing it from
// all three keys. Each member is swept once, so sweeping is amortised over
// the calls that added it; with nothing expired it is one O(log N)
// ZRANGEBYSCORE, which keeps Stats independent of the channel's size.
// Expiries use the server's clock so instances with skewed clocks agree.
//
// wsgate_presence_join  ARGV: ttl ms, key ttl ms, then client, value pairs.
// Adds members or replaces their user and info. Returns the member count.
//
// wsgate_presence_refresh ARGV: as join. What the refresher sends: one
// ZADD pushes every named member's expiry and, when it added none (they
// were all there, the usual case), nothing else is needed — a refresh
// costs a few commands per FCALL rather than per member. Members it had to
// add (swept, flushed) get their values and counts as in a join.
//
// wsgate_presence_leave ARGV: clients. Returns the member count.
//
// wsgate_presence_members → flat client, value list.
//
// wsgate_presence_stats   → {clients, users}.
//
// Whole keys get a PEXPIRE of a few TTLs on every join, so a channel whose
// instances all vanished disappears even if nobody reads it again.
const library = `#!lua name=wsgate_presence
local function user_of(v)
  local i = string.find(v, ':', 1, true)
  return string.sub(v, i + 1, i + tonumber(string.sub(v, 1, i - 1)))
end

local function count(pu, v, delta)
  local u = user_of(v)
  if u == '' then return end
  if redis.call('HINCRBY', pu, u, delta) <= 0 then
    redis.call('HDEL', pu, u)
  end
end

local function drop(ph, pu, client)
  local v = redis.call('HGET', ph, client)
  if v then
    redis.call('HDEL', ph, client)
    count(pu, v, -1)
  end
end

-- sweep removes expired members and returns the server time in ms.
local function sweep(keys)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local gone = redis.call('ZRANGEBYSCORE', keys[1], '-inf', now)
  if #gone > 0 then
    for _, c in ipairs(gone) do drop(keys[2], keys[3], c) end
    redis.call('ZREMRANGEBYSCORE', keys[1], '-inf', now)
  end
  return now
end

-- reset drops the hashes when the zset is gone (its key expired or was
-- deleted on its own), so they never describe members that are not there.
local function reset(keys)
  if redis.call('EXISTS', keys[1]) == 0 then
    redis.call('DEL', keys[2], keys[3])
    return true
  end
  return false
end

-- set makes client's value v, keeping the user counts right.
local function set(keys, c, v)
  local old = redis.call('HGET', keys[2], c)
  if old ~= v then
    if old then count(keys[3], old, -1) end
    redis.call('HSET', keys[2], c, v)
    count(keys[3], v, 1)
  end
end

local function keep(keys, ttl)
  for k = 1, 3 do redis.call('PEXPIRE', keys[k], ttl) end
end

redis.register_function('wsgate_presence_join', function(keys, args)
  reset(keys)
  local exp = sweep(keys) + tonumber(args[1])
  for i = 3, #args, 2 do
    set(keys, args[i], args[i + 1])
    redis.call('ZADD', keys[1], exp, args[i])
  end
  keep(keys, args[2])
  return redis.call('ZCARD', keys[1])
end)

redis.register_function('wsgate_presence_refresh', function(keys, args)
  reset(keys)
  local exp = sweep(keys) + tonumber(args[1])
  local za = {}
  for i = 3, #args, 2 do
    za[#za + 1] = exp
    za[#za + 1] = args[i]
  end
  if redis.call('ZADD', keys[1], unpack(za)) > 0 then
    for i = 3, #args, 2 do set(keys, args[i], args[i + 1]) end
  end
  keep(keys, args[2])
  return redis.call('ZCARD', keys[1])
end)

redis.register_function('wsgate_presence_leave', function(keys, args)
  if reset(keys) then return 0 end
  sweep(keys)
  if #args == 0 then return redis.call('ZCARD', keys[1]) end
  for i = 1, #args do drop(keys[2], keys[3], args[i]) end
  redis.call('ZREM', keys[1], unpack(args))
  return redis.call('ZCARD', keys[1])
end)

redis.register_function('wsgate_presence_members', function(keys, args)
  if reset(keys) then return {} end
  sweep(keys)
  return redis.call('HGETALL', keys[2])
end)

redis.register_function('wsgate_presence_stats', function(keys, args)
  if reset(keys) then return {0, 0} end
  sweep(keys)
  return {redis.call('ZCARD', keys[1]), redis.call('HLEN', keys[3])}
end)
`
