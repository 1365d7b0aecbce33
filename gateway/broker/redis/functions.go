package redis

// library is the Redis Functions library the gateway loads at start
// (FUNCTION LOAD REPLACE). Backends call the same functions, so offsets
// stay consistent whoever publishes.
//
// wsgate_publish KEYS: meta key, history stream key[, idempotency key];
// ARGV: pubsub channel, channel, data, node, unix ms (or ""), meta ttl ms,
// "PUBLISH"|"SPUBLISH", history size, history ttl ms[, idempotency ttl ms].
// It assigns the next offset, appends the publication to the channel's
// history stream (entry ID "<offset>-0", so a range read by offset is a
// range read by ID) and publishes the envelope, in one atomic step: a
// subscriber never sees offsets out of order, no offset is used without a
// publication, and history never lags the live stream. It returns {offset,
// epoch}.
//
// With an idempotency key (a third key, in the channel's slot) the key is
// claimed in the same step: if it already holds a publication of the same
// data, nothing is published and {offset, epoch, 1} of that first one is
// returned; other data under the key is the error "KEYREUSED ...". So a
// retry through any instance publishes at most once.
//
// wsgate_history KEYS: meta key, history stream key; ARGV: since offset,
// limit (0: all), "1" for newest first, history ttl ms, meta ttl ms. Returns
// {offset, epoch, offset1, data1, offset2, data2, ...} — entries older than
// the history ttl are left out.
//
// wsgate_position KEYS: meta key[, history stream key]; ARGV: meta ttl ms.
// Returns {offset, epoch}.
//
// A channel gets a new epoch, created from the server's TIME, when its
// meta key is missing (first use, expired, evicted, flushed, a Redis
// restarted empty) and when the meta key was written by another Redis
// process (the meta hash records the run_id of the process that made its
// epoch): a Redis restarted from a snapshot or an AOF, or a replica
// promoted by a failover, may have lost the last publications, and it
// would hand their offsets out again for other publications. A new epoch
// (offsets from 1, history emptied) makes that visible instead of silent.
// A slot migrated to another cluster master starts a new epoch too:
// clients reload once.
// Library returns the functions library, for a backend or an operator to
// load themselves (FUNCTION LOAD REPLACE).
func Library() string { return library }

const library = `#!lua name=wsgate
local function epoch(meta, hist)
  local m = redis.call('HMGET', meta, 'e', 'r')
  local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
  if m[1] and (m[2] == run or not m[2]) then
    if not m[2] then redis.call('HSET', meta, 'r', run) end
    return m[1]
  end
  local t = redis.call('TIME')
  local e = t[1] .. '.' .. t[2]
  redis.call('HSET', meta, 'e', e, 'r', run, 'o', 0)
  -- Offsets start again, so the stream must too, even when the meta key
  -- was merely missing: a stream can outlive it (evicted first, or a
  -- history ttl longer than the meta ttl), and its entries would block
  -- XADD (it needs rising IDs) and be served as the new epoch's.
  redis.call('DEL', hist or string.gsub(meta, '}:m:', '}:h:', 1))
  return e
end

local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

redis.register_function('wsgate_publish', function(keys, args)
  local meta, hist, idem = keys[1], keys[2], keys[3]
  local sum
  if idem then
    sum = redis.sha1hex(args[3])
    local prev = redis.call('GET', idem)
    if prev then
      local o, pe, s = string.match(prev, '^(%d+)|([^|]*)|(%x+)$')
      if s ~= sum then
        return redis.error_reply('KEYREUSED idempotency key already used with different data')
      end
      return {tonumber(o), pe, 1}
    end
  end
  local e = epoch(meta, hist)
  local off = redis.call('HINCRBY', meta, 'o', 1)
  redis.call('PEXPIRE', meta, args[6])
  local ts = tonumber(args[5]) or nowms()
  local size = tonumber(args[8]) or 0
  if hist and size > 0 then
    redis.call('XADD', hist, 'MAXLEN', size, off .. '-0', 'd', args[3], 't', ts)
    redis.call('PEXPIRE', hist, args[9])
  end
  local env = cmsgpack.pack({v = 1, ch = args[2], data = args[3], off = off, ep = e, node = args[4], ts = ts})
  redis.call(args[7], args[1], env)
  if idem then
    redis.call('SET', idem, off .. '|' .. e .. '|' .. sum, 'PX', tonumber(args[10]) or 300000)
  end
  return {off, e}
end)

redis.register_function('wsgate_history', function(keys, args)
  local meta, hist = keys[1], keys[2]
  local e = epoch(meta, hist)
  redis.call('PEXPIRE', meta, args[5])
  local off = tonumber(redis.call('HGET', meta, 'o') or '0')
  local limit = tonumber(args[2]) or 0
  local oldest = nowms() - tonumber(args[4])
  local entries
  if args[3] == '1' then
    entries = redis.call('XREVRANGE', hist, '+', '(' .. args[1] .. '-0')
  else
    entries = redis.call('XRANGE', hist, '(' .. args[1] .. '-0', '+')
  end
  local out = {off, e}
  local n = 0
  for _, en in ipairs(entries) do
    if limit > 0 and n >= limit then break end
    local f = en[2]
    local data, t = nil, 0
    for i = 1, #f, 2 do
      if f[i] == 'd' then data = f[i + 1] elseif f[i] == 't' then t = tonumber(f[i + 1]) end
    end
    if t >= oldest then
      local id = en[1]
      table.insert(out, tonumber(string.sub(id, 1, string.find(id, '-') - 1)))
      table.insert(out, data)
      n = n + 1
    end
  end
  return out
end)

redis.register_function('wsgate_position', function(keys, args)
  local meta = keys[1]
  local e = epoch(meta, keys[2])
  redis.call('PEXPIRE', meta, args[1])
  local off = tonumber(redis.call('HGET', meta, 'o') or '0')
  return {off, e}
end)
`
