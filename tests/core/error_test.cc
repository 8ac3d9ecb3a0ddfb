#include <gtest/gtest.h>

#include "core/error.h"

namespace oe {
namespace {

TEST(Error, ContextIsPrependedAndKindKept) {
  try {
    with_context("loading text weights", [] { throw InvalidInput("tensor x: wrong shape"); });
    FAIL() << "no exception";
  } catch (const InvalidInput& e) {  // the derived type survives the added context
    EXPECT_EQ(e.kind(), ErrorKind::InvalidInput);
    EXPECT_STREQ(e.what(), "loading text weights: tensor x: wrong shape");
  }
}

TEST(Error, CheckNamesExpressionAndMessage) {
  try {
    int n = 3;
    OE_CHECK(n == 4, "n is {}", n);
    FAIL() << "no exception";
  } catch (const InternalError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("n == 4"), std::string::npos);
    EXPECT_NE(m.find("n is 3"), std::string::npos);
  }
}

}  // namespace
}  // namespace oe
