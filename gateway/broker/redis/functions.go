package redis

// library is the Redis Functions library the gateway loads at start
// (FUNCTION LOAD REPLACE). Backends call the same functions, so offsets
// stay consistent whoever publishes.
//
// wsgate_publish KEYS[1]=meta key; ARGV: pubsub channel, channel, data,
// node, unix ms (or ""), meta ttl ms, "PUBLISH"|"SPUBLISH".
// It assigns the next offset and publishes the envelope in one atomic step:
// a subscriber can never see offsets out of order, and no offset is used
// without a publication.
//
// wsgate_position KEYS[1]=meta key; ARGV: meta ttl ms. Returns {offset,
// epoch}, creating the epoch if the channel has none yet.
//
// The epoch is created from the server's TIME when a channel's meta key is
// missing (first use, expired, flushed or a restarted Redis): a new epoch
// tells clients their old offsets mean nothing here.
const library = `#!lua name=wsgate
local function epoch(meta)
  local e = redis.call('HGET', meta, 'e')
  if not e then
    local t = redis.call('TIME')
    e = t[1] .. '.' .. t[2]
    redis.call('HSET', meta, 'e', e)
  end
  return e
end

redis.register_function('wsgate_publish', function(keys, args)
  local meta = keys[1]
  local e = epoch(meta)
  local off = redis.call('HINCRBY', meta, 'o', 1)
  redis.call('PEXPIRE', meta, args[6])
  local ts = tonumber(args[5])
  if not ts then
    local t = redis.call('TIME')
    ts = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  local env = cmsgpack.pack({v = 1, ch = args[2], data = args[3], off = off, ep = e, node = args[4], ts = ts})
  redis.call(args[7], args[1], env)
  return {off, e}
end)

redis.register_function('wsgate_position', function(keys, args)
  local meta = keys[1]
  local e = epoch(meta)
  redis.call('PEXPIRE', meta, args[1])
  local off = tonumber(redis.call('HGET', meta, 'o') or '0')
  return {off, e}
end)
`
