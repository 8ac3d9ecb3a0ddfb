#include "serve/browse.h"

#include <gtest/gtest.h>

#include "serve/api_error.h"

namespace oe::serve {
namespace {

int status_of(const std::string& header, int64_t size) {
  try {
    parse_range(header, size);
  } catch (const ApiException& e) {
    return e.error.status;
  }
  return 200;
}

TEST(ParseRange, TheFormsBrowsersSend) {
  EXPECT_FALSE(parse_range("", 100));
  EXPECT_FALSE(parse_range("items=0-5", 100));  // another unit: the whole file
  auto r = parse_range("bytes=0-", 100);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 0);
  EXPECT_EQ(r->last, 99);
  r = parse_range("bytes=10-19", 100);
  EXPECT_EQ(r->first, 10);
  EXPECT_EQ(r->last, 19);
  r = parse_range("bytes=90-500", 100);  // clipped to the file
  EXPECT_EQ(r->last, 99);
  r = parse_range("bytes=-30", 100);  // the last 30 bytes
  EXPECT_EQ(r->first, 70);
  EXPECT_EQ(r->last, 99);
  r = parse_range("bytes=-300", 100);
  EXPECT_EQ(r->first, 0);
  r = parse_range("bytes=5-9, 20-30", 100);  // of several, the first
  EXPECT_EQ(r->first, 5);
  EXPECT_EQ(r->last, 9);
}

TEST(ParseRange, BadOrUnsatisfiableRanges) {
  EXPECT_EQ(status_of("bytes=100-", 100), 416);
  EXPECT_EQ(status_of("bytes=0-", 0), 416);
  EXPECT_EQ(status_of("bytes=9-2", 100), 400);
  EXPECT_EQ(status_of("bytes=abc", 100), 400);
  EXPECT_EQ(status_of("bytes=-0", 100), 400);
  EXPECT_EQ(status_of("bytes=1-x", 100), 400);
  EXPECT_EQ(status_of("bytes=-1-2", 100), 400);
  EXPECT_EQ(status_of("bytes=99999999999999999999-", 100), 400);
}

TEST(QueryParam, DecodesAndFindsByName) {
  EXPECT_EQ(query_param("/v1/thumbnail?item=12&t=3.5", "t"), "3.5");
  EXPECT_EQ(query_param("/v1/media?path=%2Fa%20b%2Fc+d.png", "path"), "/a b/c d.png");
  EXPECT_EQ(query_param("/x?flag&y=1", "flag"), "");
  EXPECT_FALSE(query_param("/x?y=1", "item"));
  EXPECT_FALSE(query_param("/x", "item"));
  EXPECT_EQ(query_param("/x?p=%zz%4", "p"), "%zz%4");  // a broken escape stays as it is
}

TEST(CookieValue, FindsTheNamedCookie) {
  EXPECT_EQ(cookie_value("a=1; omni_embed_key=sk%2Dx; b=2", "omni_embed_key"), "sk-x");
  EXPECT_EQ(cookie_value("xomni_embed_key=1", "omni_embed_key"), "");
  EXPECT_EQ(cookie_value("", "omni_embed_key"), "");
}

TEST(ContentType, WhatPlayersNeed) {
  EXPECT_EQ(content_type_for("a/b.MP4"), "video/mp4");
  EXPECT_EQ(content_type_for("x.wav"), "audio/wav");
  EXPECT_EQ(content_type_for("x.webm"), "video/webm");
  EXPECT_EQ(content_type_for("x"), "application/octet-stream");
}

TEST(PageFile, OnlyThePagesOwnFilesFromAWebRoot) {
  EXPECT_FALSE(page_file("/../etc/passwd", "/etc"));
  EXPECT_FALSE(page_file("/passwd", "/etc"));
}

}  // namespace
}  // namespace oe::serve
