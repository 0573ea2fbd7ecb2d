#include "sessionstream/sessions/session_id.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "sessionstream/common/errors.hpp"

namespace sessionstream {
namespace {

TEST(SessionId, AcceptsTheDocumentedForm) {
  for (const std::string id :
       {std::string{"abcdefgh"}, std::string(128, 'z'), std::string{"AZaz09-_"},
        std::string{"--------"}, std::string{"Session_2024-ABC"}}) {
    EXPECT_TRUE(is_valid_session_id(id)) << id;
    EXPECT_NO_THROW(validate_session_id(id)) << id;
  }
}

TEST(SessionId, RejectsEverythingElse) {
  const std::vector<std::string> invalid = {
      "",
      "abcdefg",  // 7
      std::string(129, 'a'),
      "abcd efgh",
      "abcdefg:",  // a channel separator
      "session:abcdefgh",
      "abcdefg/",
      "abcdefg.",
      "abcdefg+",
      "abcdefg=",
      "abcd\nefgh",
      "caf\xc3\xa9"
      "abcd",
      std::string{"abcd\0efgh", 9},
  };
  for (const auto& id : invalid) {
    EXPECT_FALSE(is_valid_session_id(id)) << testing::PrintToString(id);
    EXPECT_THROW(validate_session_id(id), InvalidArgument) << testing::PrintToString(id);
  }
}

TEST(SessionId, ErrorNamesTheValueAndTheValidForm) {
  try {
    validate_session_id("bad id!");
    FAIL() << "accepted";
  } catch (const InvalidArgument& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("'bad id!'"), std::string::npos) << message;
    EXPECT_NE(message.find("8-128"), std::string::npos) << message;
  }
  try {
    validate_session_id(std::string(5000, '!'));
    FAIL() << "accepted";
  } catch (const InvalidArgument& error) {
    const std::string message = error.what();
    EXPECT_LT(message.size(), 300u) << "the offending value is echoed unbounded";
    EXPECT_NE(message.find("5000 characters"), std::string::npos) << message;
  }
}

TEST(SessionId, GeneratedIdsAreValidAndUnique) {
  constexpr int kCount = 10'000;
  std::unordered_set<std::string> seen;
  std::set<char> symbols;
  for (int i = 0; i < kCount; ++i) {
    const std::string id = generate_session_id();
    ASSERT_EQ(id.size(), 32u);
    ASSERT_TRUE(is_valid_session_id(id)) << id;
    symbols.insert(id.begin(), id.end());
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kCount));
  // 320k draws over 64 symbols: any missing one means the mapping is biased.
  EXPECT_EQ(symbols.size(), 64u);
}

TEST(SessionId, PrivateChannelBelongsToItsSessionOnly) {
  EXPECT_EQ(private_channel("mine1234"), "session:mine1234");
  EXPECT_FALSE(is_foreign_private_channel(private_channel("mine1234"), "mine1234"));
  EXPECT_TRUE(is_foreign_private_channel("session:other123", "mine1234"));
  EXPECT_TRUE(is_foreign_private_channel("session:mine12345", "mine1234")) << "prefix match";
  EXPECT_TRUE(is_foreign_private_channel("session:mine123", "mine1234")) << "prefix match";
  EXPECT_TRUE(is_foreign_private_channel("session:", "mine1234"));
  EXPECT_FALSE(is_foreign_private_channel("crawl:42:progress", "mine1234"));
  EXPECT_FALSE(is_foreign_private_channel("sessions:other123", "mine1234"));
  EXPECT_FALSE(is_foreign_private_channel("mine1234", "mine1234"));
}

}  // namespace
}  // namespace sessionstream
