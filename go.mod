module github.com/ringbus/topics

go 1.26
