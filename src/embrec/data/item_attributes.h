// Item attributes keyed by the log's external item id: the S3-Rec papers' *_item2attributes.json, MovieLens
// movies.dat and u.item genres and years (optionally through an item map), and plain `item|attr|attr` text.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

namespace embrec::data {

struct ItemAttributes {
  // External item id (as written in the interaction log) -> its attributes, opaque strings in file order.
  std::unordered_map<std::string, std::vector<std::string>> by_item;
  // movies / uitem: external item id -> release year as written ("1995"), for the items that have one (movies.dat:
  // a title ending in "(1995)"; u.item: a release date such as "01-Jan-1995"). Empty for json and text.
  std::unordered_map<std::string, std::string> year_by_item;
  // The format that was read (json, movies, uitem or text): the detected one when `auto` was asked for.
  std::string format;

  // The attributes of `external_id` (empty when the item has none or is not in the file).
  const std::vector<std::string>& of(const std::string& external_id) const;
};

struct AttributeReadOptions {
  // auto | json | movies | uitem | text. auto: by extension (.json, .dat = movies, .item = uitem), else by content:
  // '{' first = json; a first line `integer::...::...` = movies; 24 '|' fields ending in 19 flags 0/1 = uitem;
  // anything else = text.
  std::string format = "auto";
  // movies / uitem: `item<TAB>movie_id` lines (an optional header first) mapping the log's item ids to movie ids;
  // only mapped items are kept. Empty: the movie id is the item id.
  std::string item_map;
  // uitem: u.genre (`name|index`, indexes 0..n-1) naming the genre flags. Empty: 19 flags named genre0..genre18.
  std::string genre_names;
};

// Reads an attribute file. Errors name the file and line (and field), e.g.
//   "movies.dat:12: expected 3 fields separated by '::', got 2"
//   "item_map.tsv:5: field 'movie_id': cannot parse 'x' as an integer"
//   "u.item:7: field 'release date': expected a date such as 01-Jan-1995, got '1995-01-01'"
//   "attributes.json:1: malformed JSON at byte 37: syntax error while parsing ..."
//   "attributes.json: item '4': expected an array of strings or integers, got {"a":1}"
// A UTF-8 byte-order mark is skipped, "\r\n" ends a line like "\n", blank lines are skipped, and an item listed
// twice is an error. Integer attributes in JSON are kept as their decimal strings.
ItemAttributes read_item_attributes(const std::string& path, const AttributeReadOptions& options = {});

// The common case: format detected, movies.dat / u.item read through `item_map_path` when it is not empty.
ItemAttributes read_item_attributes(const std::string& path, const std::string& item_map_path);

}  // namespace embrec::data
